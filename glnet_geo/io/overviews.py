"""Majority (``mode``) overviews of class rasters, built block by block.

The overviews of a class raster should show the class most pixels have, not
whichever pixel a nearest-neighbour lookup hits. GDAL's ``mode`` resampling
does that, but it counts a histogram for every output pixel and was the
largest cost outside the model when predicting small rasters. Here each level
is the majority of 2 x 2 pixels of the level below, a few vectorized
comparisons: :func:`write_mode_overviews` fills a GeoTIFF's overviews one
block at a time (memory does not grow with the raster) and GDAL's COG driver
then copies them (``OVERVIEWS=FORCE_USE_EXISTING``). Timings are in
``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import os
import warnings

import numpy as np
import rasterio
from rasterio.enums import Resampling
from rasterio.errors import NotGeoreferencedWarning
from rasterio.windows import Window


def overview_factors(width: int, height: int, block_size: int) -> list[int]:
    """Return the overview factors GDAL's COG driver makes: halve until a tile holds a level.

    Args:
        width: Raster width in pixels.
        height: Raster height in pixels.
        block_size: Tile side of the COG.

    Returns:
        ``[2, 4, ...]``, empty when the raster fits in one tile.

    """
    factors, factor = [], 1
    while max(width, height) // factor > block_size:
        factor *= 2
        factors.append(factor)
    return factors


def mode_2x2(pixels: np.ndarray, nodata: int | None) -> np.ndarray:
    """Return the majority of each 2 x 2 block of ``pixels``, ignoring ``nodata``.

    A value held by more of the block's valid pixels wins; on a tie the first
    of them in reading order (top left, top right, bottom left, bottom right)
    wins. A block without valid pixels is ``nodata``. An odd last row or
    column counts as a block with nodata beyond the edge.

    Args:
        pixels: ``(h, w)`` integer pixels.
        nodata: Value that does not count, or None.

    Returns:
        ``(ceil(h / 2), ceil(w / 2))`` array of ``pixels``' dtype.

    """
    height, width = pixels.shape
    valid = np.ones(pixels.shape, dtype=bool) if nodata is None else pixels != nodata
    if height % 2 or width % 2:
        pad = ((0, height % 2), (0, width % 2))
        pixels = np.pad(pixels, pad, constant_values=0 if nodata is None else nodata)
        valid = np.pad(valid, pad, constant_values=False)
    a, b, c, d = (pixels[i::2, j::2] for i, j in ((0, 0), (0, 1), (1, 0), (1, 1)))
    va, vb, vc, vd = (valid[i::2, j::2] for i, j in ((0, 0), (0, 1), (1, 0), (1, 1)))
    first = np.where(va, a, np.where(vb, b, np.where(vc, c, d)))
    # Of four pixels, a value held by two can only be tied (by a later pair), not beaten.
    out = np.where((c == d) & vc & vd, c, first)
    out = np.where(((b == c) & vc | (b == d) & vd) & vb, b, out)
    return np.where(((a == b) & vb | (a == c) & vc | (a == d) & vd) & va, a, out)


def write_mode_overviews(path: str | os.PathLike, block_size: int) -> list[int]:
    """Build majority overviews into a closed, tiled, single-image GeoTIFF.

    GDAL allocates the levels (:meth:`~rasterio.io.DatasetWriter.build_overviews`
    with ``nearest``, cheap); each level is then rewritten from the one below
    with :func:`mode_2x2`, ``2 * block_size`` pixels square at a time, through
    GDAL's ``GTIFF_DIR`` access to the file's sub-images. Every band is done
    alike; nodata is the file's. Files with an internal mask are not
    supported (its sub-images would interleave with the overviews).

    Args:
        path: The GeoTIFF, updated in place.
        block_size: Tile side of the COG it will become (see
            :func:`overview_factors`).

    Returns:
        The overview factors built.

    """
    with rasterio.open(path) as dataset:
        width, height, nodata = dataset.width, dataset.height, dataset.nodata
    factors = overview_factors(width, height, block_size)
    if not factors:
        return factors
    nodata = None if nodata is None else int(nodata)
    with rasterio.open(path, "r+") as dataset:
        dataset.build_overviews(factors, Resampling.nearest)
    step = 2 * block_size
    with warnings.catch_warnings():  # sub-images carry no georeferencing of their own
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        for level in range(1, len(factors) + 1):
            with (rasterio.open(f"GTIFF_DIR:{level}:{path}") as below,
                  rasterio.open(f"GTIFF_DIR:{level + 1}:{path}", "r+") as above):
                for row in range(0, below.height, step):
                    for col in range(0, below.width, step):
                        window = Window(col, row, min(step, below.width - col),
                                        min(step, below.height - row))
                        for band in range(1, below.count + 1):
                            majority = mode_2x2(below.read(band, window=window), nodata)
                            above.write(majority, band, window=Window(
                                col // 2, row // 2, majority.shape[1], majority.shape[0]))
    return factors
