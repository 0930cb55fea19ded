"""What GDAL itself reads from a raster band that rasterio does not expose.

rasterio has no API for category names or raster attribute tables, so the
tests ask the GDAL library rasterio is built on (through its C API), exactly as
``gdalinfo`` and QGIS do.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import glob
import os
from pathlib import Path

import pytest
import rasterio


def _library() -> ctypes.CDLL:
    bundled = glob.glob(os.path.dirname(rasterio.__file__) + ".libs/libgdal*")
    name = bundled[0] if bundled else ctypes.util.find_library("gdal")
    if name is None:
        pytest.skip("the GDAL library rasterio uses was not found")
    lib = ctypes.CDLL(name)
    lib.GDALAllRegister()
    pointer = ctypes.c_void_p
    lib.GDALOpen.restype, lib.GDALOpen.argtypes = pointer, [ctypes.c_char_p, ctypes.c_int]
    lib.GDALClose.argtypes = [pointer]
    lib.GDALGetRasterBand.restype, lib.GDALGetRasterBand.argtypes = pointer, [pointer, ctypes.c_int]
    lib.GDALGetMetadata.restype, lib.GDALGetMetadata.argtypes = pointer, [pointer, ctypes.c_char_p]
    lib.GDALGetRasterCategoryNames.restype = ctypes.POINTER(ctypes.c_char_p)
    lib.GDALGetRasterCategoryNames.argtypes = [pointer]
    lib.GDALGetDefaultRAT.restype, lib.GDALGetDefaultRAT.argtypes = pointer, [pointer]
    for function in (lib.GDALRATGetRowCount, lib.GDALRATGetColumnCount):
        function.argtypes = [pointer]
    lib.GDALRATGetNameOfCol.restype = ctypes.c_char_p
    lib.GDALRATGetNameOfCol.argtypes = [pointer, ctypes.c_int]
    lib.GDALRATGetValueAsString.restype = ctypes.c_char_p
    lib.GDALRATGetValueAsString.argtypes = [pointer, ctypes.c_int, ctypes.c_int]
    return lib


def categories(path: Path, band: int = 1) -> tuple[list[str], list[dict[str, str]]]:
    """Return the band's category names and its raster attribute table's rows."""
    lib = _library()
    dataset = lib.GDALOpen(os.fsencode(path), 0)
    assert dataset, f"GDAL cannot open {path}"
    try:
        handle = lib.GDALGetRasterBand(dataset, band)
        lib.GDALGetMetadata(handle, None)  # loads the auxiliary metadata, as gdalinfo does
        names_p = lib.GDALGetRasterCategoryNames(handle)
        names: list[str] = []
        while names_p and names_p[len(names)] is not None:
            names.append(names_p[len(names)].decode())
        rows: list[dict[str, str]] = []
        rat = lib.GDALGetDefaultRAT(handle)
        if rat:
            columns = [lib.GDALRATGetNameOfCol(rat, c).decode()
                       for c in range(lib.GDALRATGetColumnCount(rat))]
            rows = [{name: lib.GDALRATGetValueAsString(rat, r, c).decode()
                     for c, name in enumerate(columns)}
                    for r in range(lib.GDALRATGetRowCount(rat))]
        return names, rows
    finally:
        lib.GDALClose(dataset)
