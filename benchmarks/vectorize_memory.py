"""Peak memory and time of ``vectorize_raster`` on large synthetic class rasters.

Writes class GeoTIFFs of 4096^2 and 16384^2 pixels, block by block:

- ``landcover``: six classes on wiggly fields (regions of bounded size);
- ``buildings``: rotated rectangles on a background (class 1 kept);
- ``landcover-spanning``: six classes from smooth noise, where one region of a
  class spans the whole raster (its single feature grows with the raster);

then vectorizes each one in a fresh Python process and prints that process's
peak resident memory and wall time.

Usage:
    python benchmarks/vectorize_memory.py [--sizes 4096 16384] [--workdir DIR]
        [--kinds landcover buildings landcover-spanning] [--block-size 1024]
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SEED = 0
PIXEL = 0.5  # metres
CLASSES = 6


def _octave(cell: int, rows: np.ndarray, cols: np.ndarray, lattice: np.ndarray) -> np.ndarray:
    """Bilinear interpolation of a coarse random lattice (one value per ``cell`` px)."""
    y, x = rows / cell, cols / cell
    i, j = np.floor(y).astype(int), np.floor(x).astype(int)
    fy, fx = (y - i)[:, None], (x - j)[None, :]
    a, b = lattice[np.ix_(i, j)], lattice[np.ix_(i, j + 1)]
    c, d = lattice[np.ix_(i + 1, j)], lattice[np.ix_(i + 1, j + 1)]
    return (a * (1 - fx) + b * fx) * (1 - fy) + (c * (1 - fx) + d * fx) * fy


class Parcels:
    """Six classes on fields: warped Voronoi cells of seeds about every 96 px.

    Neighbouring fields of one class merge, but no class spans the raster
    (each class holds 1/6 of the cells, far below the percolation threshold).
    """

    cell = 96
    warp = 6.0  # px: the fields' borders wiggle by about this much

    def __init__(self, size: int) -> None:
        rng = np.random.default_rng(SEED)
        n = size // self.cell + 2
        self.seed_x = (np.arange(n)[None, :] + rng.uniform(0.1, 0.9, (n, n))) * self.cell
        self.seed_y = (np.arange(n)[:, None] + rng.uniform(0.1, 0.9, (n, n))) * self.cell
        self.classes = rng.integers(0, CLASSES, (n, n)).astype(np.uint8)
        self.wiggle = [rng.random((size // 16 + 2, size // 16 + 2)) for _ in range(2)]

    def window(self, row: int, col: int, height: int, width: int) -> np.ndarray:
        rows, cols = np.arange(row, row + height), np.arange(col, col + width)
        x = cols[None, :] + self.warp * (2 * _octave(16, rows, cols, self.wiggle[0]) - 1)
        y = rows[:, None] + self.warp * (2 * _octave(16, rows, cols, self.wiggle[1]) - 1)
        ci, cj = np.floor(y / self.cell).astype(int), np.floor(x / self.cell).astype(int)
        best = np.full((height, width), np.inf)
        out = np.zeros((height, width), np.uint8)
        last = len(self.classes) - 1
        for di in (-1, 0, 1):
            for dj in (-1, 0, 1):
                i, j = np.clip(ci + di, 0, last), np.clip(cj + dj, 0, last)
                d = (x - self.seed_x[i, j]) ** 2 + (y - self.seed_y[i, j]) ** 2
                closer = d < best
                best[closer], out[closer] = d[closer], self.classes[i, j][closer]
        return out


class Spanning:
    """Six classes from thresholded two-octave smooth noise (seamless across windows).

    The classes in the middle of the range form bands that connect across the
    whole raster: one region, one feature, with an outline that grows with
    the raster (the worst case for memory).
    """

    octaves = ((192, 0.7), (24, 0.3))  # (cell px, weight)

    def __init__(self, size: int) -> None:
        rng = np.random.default_rng(SEED)
        self.lattices = [rng.random((size // cell + 2, size // cell + 2))
                         for cell, _ in self.octaves]
        grid = np.arange(0, min(size, 4096), 16)  # thresholds for near-equal class shares
        sample = self.field(grid, grid)
        self.thresholds = np.quantile(sample, np.linspace(0, 1, CLASSES + 1)[1:-1])

    def field(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        return sum(w * _octave(cell, rows, cols, lat)
                   for (cell, w), lat in zip(self.octaves, self.lattices, strict=True))

    def window(self, row: int, col: int, height: int, width: int) -> np.ndarray:
        f = self.field(np.arange(row, row + height), np.arange(col, col + width))
        return np.digitize(f, self.thresholds).astype(np.uint8)


class Buildings:
    """Rotated rectangles (8-30 px sides), at most one per 40 px cell, on background 0."""

    cell = 40

    def __init__(self, size: int) -> None:
        rng = np.random.default_rng(SEED)
        n = size // self.cell
        self.present = rng.random((n, n)) < 0.6
        self.w, self.h = rng.uniform(8, 30, (2, n, n))
        self.angle = rng.uniform(0, 90, (n, n))
        self.dx, self.dy = rng.uniform(-4, 4, (2, n, n))

    def window(self, row: int, col: int, height: int, width: int) -> np.ndarray:
        import rasterio.features
        import shapely
        from affine import Affine
        from shapely import affinity

        c0, r0 = max(col // self.cell - 1, 0), max(row // self.cell - 1, 0)
        c1 = min((col + width) // self.cell + 2, self.present.shape[1])
        r1 = min((row + height) // self.cell + 2, self.present.shape[0])
        shapes = []
        for i in range(r0, r1):
            for j in range(c0, c1):
                if not self.present[i, j]:
                    continue
                cx = (j + 0.5) * self.cell + self.dx[i, j]
                cy = (i + 0.5) * self.cell + self.dy[i, j]
                w, h = self.w[i, j] / 2, self.h[i, j] / 2
                rect = affinity.rotate(shapely.box(cx - w, cy - h, cx + w, cy + h),
                                       self.angle[i, j])
                shapes.append((rect, 1))
        out = np.zeros((height, width), np.uint8)
        if shapes:
            rasterio.features.rasterize(shapes, out=out,
                                        transform=Affine.translation(col, row))
        return out


KINDS = {"landcover": Parcels, "buildings": Buildings, "landcover-spanning": Spanning}
OPTIONS = {"landcover": {}, "buildings": {"classes": [1]}, "landcover-spanning": {}}


def make_raster(path: Path, kind: str, size: int) -> None:
    """Write the synthetic class raster window by window (tiled, deflate)."""
    import rasterio
    from rasterio.transform import from_origin
    from rasterio.windows import Window

    scene = KINDS[kind](size)
    profile = dict(driver="GTiff", width=size, height=size, count=1, dtype="uint8",
                   crs="EPSG:32633", transform=from_origin(500_000, 4_000_000, PIXEL, PIXEL),
                   tiled=True, blockxsize=512, blockysize=512, compress="deflate")
    step = 2048
    with rasterio.open(path, "w", **profile) as dst:
        for row in range(0, size, step):
            for col in range(0, size, step):
                h, w = min(step, size - row), min(step, size - col)
                dst.write(scene.window(row, col, h, w), 1, window=Window(col, row, w, h))


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far, in MiB.

    Linux: ``VmHWM`` (``ru_maxrss`` there carries the parent's peak across
    fork + exec); elsewhere ``ru_maxrss``.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    scale = 1 if sys.platform == "darwin" else 1024  # bytes on macOS, KiB elsewhere
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20


def child(mask: str, output: str, kind: str, block_size: int) -> None:
    """Vectorize in this process and print its peak memory and time as JSON."""
    import pyogrio
    import shapely

    from glnet_geo.vectorize import vectorize_raster

    base = peak_rss_mib()
    start = time.perf_counter()
    vectorize_raster(mask, output, block_size=block_size, overwrite=True, **OPTIONS[kind])
    seconds = time.perf_counter() - start
    peak = peak_rss_mib()
    features = vertices = largest = 0
    with pyogrio.open_arrow(output, columns=[], batch_size=10_000,
                           use_pyarrow=True) as (meta, reader):
        for batch in reader:
            counts = shapely.get_num_coordinates(
                shapely.from_wkb(batch.column(meta["geometry_name"])))
            features += len(counts)
            vertices += int(counts.sum())
            largest = max(largest, int(counts.max(initial=0)))
    print(json.dumps({"seconds": seconds, "peak_mib": peak, "import_mib": base,
                      "features": features, "vertices": vertices, "largest": largest}))


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import os

    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[4096, 16384])
    parser.add_argument("--kinds", nargs="+", default=list(KINDS), choices=list(KINDS))
    parser.add_argument("--block-size", type=int, default=1024)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--child", nargs=3, metavar=("MASK", "OUTPUT", "KIND"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child, block_size=args.block_size)
        return

    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        print(f"machine: {machine()}; block size {args.block_size} px")
        print(f"{'raster':>29} {'features':>9} {'vertices':>10} {'largest':>9} {'time s':>8} "
              f"{'peak MiB':>9} {'after import MiB':>17}")
        for kind in args.kinds:
            for size in args.sizes:
                mask = Path(tmp) / f"{kind}-{size}.tif"
                make_raster(mask, kind, size)
                out = Path(tmp) / f"{kind}-{size}.gpkg"
                done = subprocess.run(
                    [sys.executable, __file__, "--child", str(mask), str(out), kind,
                     "--block-size", str(args.block_size)],
                    capture_output=True, text=True)
                if done.returncode:
                    sys.exit(f"{kind} {size}: vectorizing failed:\n{done.stderr}")
                result = json.loads(done.stdout.strip().splitlines()[-1])
                print(f"{kind + ' ' + str(size) + '^2':>29} {result['features']:>9} "
                      f"{result['vertices']:>10} {result['largest']:>9} "
                      f"{result['seconds']:>8.1f} {result['peak_mib']:>9.0f} "
                      f"{result['import_mib']:>17.0f}", flush=True)
                mask.unlink()
                out.unlink()


if __name__ == "__main__":
    main()
