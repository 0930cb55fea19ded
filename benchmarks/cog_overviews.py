"""What do a class COG's majority overviews cost: GDAL's ``mode`` against ours?

For each size, a class raster of smooth regions (7 classes, some nodata) is
written as the tiled, DEFLATE temporary GeoTIFF that ``predict`` writes, then
turned into a COG twice, best of ``--repeat`` runs each:

- GDAL: the COG driver builds the overviews (``OVERVIEW_RESAMPLING=MODE``);
- ours: :func:`glnet_geo.io.overviews.write_mode_overviews` fills them, the
  COG driver copies them (what :class:`glnet_geo.io.writer.CogWriter` does).

It prints both times and how many overview pixels differ (ties broken
differently, and our levels are cascaded from the level below where GDAL's
may not be).

Usage:
    python benchmarks/cog_overviews.py [--sizes 2048 8192] [--repeat 3] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import rasterio
import rasterio.shutil
from affine import Affine
from rasterio.windows import Window

from glnet_geo.io.overviews import write_mode_overviews
from glnet_geo.io.writer import BLOCK_SIZE, CLASS_NODATA


def write_classes(path: Path, size: int) -> None:
    """A ``size`` x ``size`` class raster of smooth regions, written block by block."""
    profile = dict(driver="GTiff", width=size, height=size, count=1, dtype="uint8",
                   nodata=CLASS_NODATA, crs="EPSG:32631",
                   transform=Affine(0.5, 0, 500000, 0, -0.5, 4600000), tiled=True,
                   blockxsize=BLOCK_SIZE, blockysize=BLOCK_SIZE, compress="DEFLATE", zlevel=1,
                   BIGTIFF="IF_SAFER")
    with rasterio.open(path, "w", **profile) as dst:
        for row in range(0, size, BLOCK_SIZE):
            for col in range(0, size, BLOCK_SIZE):
                h, w = min(BLOCK_SIZE, size - row), min(BLOCK_SIZE, size - col)
                y, x = np.mgrid[row:row + h, col:col + w].astype(np.float32)
                field = np.sin(x / 53) + np.cos(y / 37) + np.sin((x - y) / 11) * 0.3
                classes = ((field + 2.3) * 1.5).astype(np.uint8).clip(0, 6)
                classes[(x < 100) & (y < 100)] = CLASS_NODATA
                dst.write(classes, 1, window=Window(col, row, w, h))


def to_cog(source: Path, cog: Path, ours: bool) -> float:
    """Seconds to turn ``source`` into a COG with majority overviews."""
    start = time.perf_counter()
    if ours:
        write_mode_overviews(source, BLOCK_SIZE)
        options = {"OVERVIEWS": "FORCE_USE_EXISTING"}
    else:
        options = {"OVERVIEW_RESAMPLING": "MODE"}
    rasterio.shutil.copy(source, cog, driver="COG", BLOCKSIZE=BLOCK_SIZE, COMPRESS="DEFLATE",
                         BIGTIFF="IF_SAFER", NUM_THREADS="ALL_CPUS", **options)
    return time.perf_counter() - start


def differing_share(a: Path, b: Path) -> float:
    """Share of overview pixels (all levels) that differ between two COGs."""
    differ = total = 0
    with rasterio.open(a) as first:
        levels = len(first.overviews(1))
    for level in range(levels):
        with (rasterio.open(a, OVERVIEW_LEVEL=level) as x,
              rasterio.open(b, OVERVIEW_LEVEL=level) as y):
            differ += int((x.read(1) != y.read(1)).sum())
            total += x.width * x.height
    return differ / max(total, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[2048, 8192])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workdir", type=Path, help="where the temporary rasters go")
    args = parser.parse_args()
    print("| class raster | GDAL mode (s) | ours (s) | ours / GDAL | overview pixels differing |")
    print("|---|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory(dir=args.workdir, prefix="cog-overviews-") as tmp:
        tmp = Path(tmp)
        for size in args.sizes:
            source = tmp / f"classes-{size}.tif"
            write_classes(source, size)
            best = {}
            for ours in (False, True) * args.repeat:
                work = tmp / "work.tif"
                shutil.copy(source, work)
                seconds = to_cog(work, tmp / f"cog-{ours}.tif", ours)
                best[ours] = min(best.get(ours, seconds), seconds)
            share = differing_share(tmp / "cog-False.tif", tmp / "cog-True.tif")
            print(f"| {size}² | {best[False]:.3f} | {best[True]:.3f} | "
                  f"{best[True] / best[False]:.2f} | {100 * share:.2f} % |", flush=True)


if __name__ == "__main__":
    main()
