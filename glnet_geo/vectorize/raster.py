"""Class raster -> GIS polygons, block by block, with regions cut by blocks merged back.

:func:`vectorize_raster` turns a single-band integer class raster of any size
(glnet-geo's masks or any other tool's) into one polygon feature per connected
region, with ``class_id``, ``class_name``, ``area_m2`` and, when a
probabilities raster is given, ``confidence``. Memory follows the block size,
the raster's width and the largest region, never the raster's area.

It drives the package's steps: the raster is checked and its class names
read (:mod:`~glnet_geo.vectorize.source`); blocks are polygonized
(:mod:`~glnet_geo.vectorize.blocks`) and the pieces of regions cut by seams
joined (:mod:`~glnet_geo.vectorize.seams`, :mod:`~glnet_geo.vectorize.dissolve`);
complete regions are finished into features (:mod:`~glnet_geo.vectorize.finishing`,
:mod:`~glnet_geo.vectorize.areas`, :mod:`~glnet_geo.vectorize.regularize`) and
written, styled, in the output's format (:mod:`~glnet_geo.vectorize.output`,
:mod:`~glnet_geo.vectorize.formats`). An output without any feature gets one
warning line.

A raster without a CRS is refused (:class:`~glnet_geo.errors.InputError`):
polygons in pixel coordinates would land at the wrong place in any GIS.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from glnet_geo.errors import InputError
from glnet_geo.vectorize.areas import PixelAreas
from glnet_geo.vectorize.blocks import DEFAULT_BLOCK_SIZE, Connectivity
from glnet_geo.vectorize.finishing import Finisher
from glnet_geo.vectorize.formats import VectorFormat, check_output, resolve_format
from glnet_geo.vectorize.output import StagedOutput
from glnet_geo.vectorize.seams import Regions, iter_regions
from glnet_geo.vectorize.source import (
    check_class_raster,
    class_styles,
    open_probabilities,
    read_class_names,
)

log = logging.getLogger(__name__)


def vectorize_raster(mask_path: str | os.PathLike, output_path: str | os.PathLike, *,
                     simplify: float = 0.0, min_area: float = 0.0,
                     classes: Iterable[int] | None = None, regularize: bool = False,
                     probabilities: str | os.PathLike | None = None,
                     format: str | VectorFormat | None = None,
                     block_size: int = DEFAULT_BLOCK_SIZE,
                     connectivity: int | Connectivity = Connectivity.FOUR,
                     overwrite: bool = False,
                     class_names: Sequence[str] | dict[int, str] | None = None) -> Path:
    """Write one polygon per connected region of a class raster.

    Args:
        mask_path: a single-band integer class raster with a CRS (any size).
        output_path: the polygons; the format follows the extension (see
            :class:`~glnet_geo.vectorize.formats.VectorFormat`) unless
            ``format`` is given.
        simplify: coverage simplification tolerance in map units (0: none);
            neighbouring regions keep sharing their edges.
        min_area: drop regions smaller than this, in m2, and fill holes
            smaller than it (0: keep all).
        classes: class ids to write (None: all).
        regularize: right-angled outlines (buildings); see
            :mod:`glnet_geo.vectorize.regularize`.
        probabilities: a raster of the same size with one band per class (band
            ``k + 1`` for class ``k``, uint8 scaled 0..255 or float 0..1) or one
            confidence band; adds ``confidence``, the mean over the region.
        format: a :class:`~glnet_geo.vectorize.formats.VectorFormat` or its
            name ("gpkg", "geojson", ...; :func:`~glnet_geo.vectorize.formats.describe`).
        block_size: side of the square blocks processed at a time, in pixels.
        connectivity: 4 (default) or 8.
        overwrite: replace an existing output.
        class_names: names by class id; overrides the raster's ``class_names``
            tag; unnamed classes are called ``class_<id>``.

    Returns:
        The output path.

    Raises:
        InputError: bad raster, option or format.
        OutputExistsError: the output exists and ``overwrite`` is False.
        OutputError: the output's directory is missing or not writable.

    """
    import rasterio

    from glnet_geo.io.reader import block_cache

    mask_path, output_path = Path(mask_path), Path(output_path)
    fmt = resolve_format(output_path, format)
    check_output(output_path, fmt, overwrite)
    connectivity = _connectivity(connectivity)
    if not (isinstance(block_size, int) and block_size >= 2):
        raise InputError(f"block size {block_size!r} is not an integer >= 2 pixels; "
                         f"use e.g. {DEFAULT_BLOCK_SIZE}")
    for name, value in (("simplify", simplify), ("min-area", min_area)):
        if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
            raise InputError(f"--{name} {value!r} is not a number >= 0; pass e.g. 0 or 1.5")
    keep = None if classes is None else _class_ids(classes)
    if not mask_path.exists():
        raise InputError(f"class raster {mask_path} does not exist; check the path")

    with block_cache(_cache_mb(block_size)):
        try:
            src = rasterio.open(mask_path)
        except rasterio.errors.RasterioIOError as exc:
            raise InputError(f"{mask_path} is not a raster GDAL can open ({exc}); "
                             f"give a class GeoTIFF") from None
        with src:
            check_class_raster(src)
            names = read_class_names(src)
            if class_names is not None:
                names.update(class_names.items() if isinstance(class_names, dict)
                             else enumerate(class_names))
            prob = open_probabilities(probabilities, src) if probabilities else None
            try:
                finish = Finisher(
                    transform=src.transform, crs=src.crs,
                    areas=PixelAreas(src.crs, src.transform, (src.width / 2, src.height / 2)),
                    class_names=names, min_area=float(min_area), regularize=regularize,
                    connectivity=connectivity, with_confidence=prob is not None)
                tolerance_px = float(simplify) / math.sqrt(abs(src.transform.determinant))
                with StagedOutput(output_path, fmt, finish.geometry_type, finish.columns(),
                                  src.crs) as out:
                    for regions in iter_regions(src, block_size=block_size,
                                                connectivity=connectivity, classes=keep,
                                                tolerance_px=tolerance_px, probabilities=prob):
                        out.write(finish(regions))
                    if not out.count:
                        out.write(finish(Regions()))  # an empty layer, with its fields
                    out.publish(overwrite, class_styles(src, names, keep))
            finally:
                if prob is not None:
                    prob.close()
    if out.count:
        log.info("wrote %d polygons to %s", out.count, output_path)
    else:
        log.warning("wrote no feature to %s: %s has no %s pixel; check --classes and the "
                    "raster's values", output_path, mask_path.name,
                    "valid" if keep is None else f"class {','.join(map(str, keep))}")
    return output_path


def _connectivity(value: int | Connectivity) -> Connectivity:
    try:
        return Connectivity(int(value))
    except (ValueError, TypeError):
        raise InputError(f"connectivity {value!r} is not 4 or 8; pass 4 (edge neighbours) "
                         f"or 8 (edge and corner neighbours)") from None


def _class_ids(classes: Iterable[int]) -> list[int]:
    out = []
    for c in classes:
        try:
            out.append(int(c))
        except (ValueError, TypeError):
            raise InputError(f"class {c!r} is not an integer class id; pass ids such as "
                             f"--classes 1,2") from None
    if not out:
        raise InputError("no class ids given to keep; pass ids such as --classes 1,2 or none "
                         "to keep all")
    return out


def _cache_mb(block_size: int) -> int:
    """GDAL block cache in MB: four blocks of 8-byte pixels, 64 to 512 MB.

    Blocks are read once each, so a larger cache (GDAL's default is 5% of the
    RAM) would only make the resident memory grow with the raster.
    """
    return int(min(512, max(64, 4 * block_size * block_size * 8 / 2**20)))
