"""Peak memory and time of ``vectorize_raster`` on large synthetic class rasters.

Writes class GeoTIFFs of 4096^2 and 16384^2 pixels, block by block:

- ``landcover``: six classes on wiggly fields (regions of bounded size);
- ``buildings``: rotated rectangles on a background (class 1 kept);
- ``landcover-spanning``: six classes from smooth noise, where one region of a
  class spans the whole raster (its single feature grows with the raster);

then vectorizes each one in a fresh Python process and prints that process's
peak resident memory and wall time, the features, and the area of each class.

``--method`` picks who vectorizes (several: each raster is vectorized by each
in turn, and the areas per class are compared):

- ``ours``: :func:`glnet_geo.vectorize.vectorize_raster` (blocks, seams joined);
- ``gdal``: GDAL's polygonize over the whole band, the field's usual way:
  :func:`rasterio.features.shapes` on a :func:`rasterio.band` (GDAL reads the
  raster itself, so there are no seams to join), invalid polygons repaired
  with :func:`shapely.make_valid`, areas from the map coordinates, written to
  a GeoPackage in the same chunks (same fields less ``class_name``).

Usage:
    python benchmarks/vectorize_memory.py [--sizes 4096 16384] [--workdir DIR]
        [--kinds landcover buildings landcover-spanning] [--block-size 1024]
        [--method ours gdal]
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


def polygonize_gdal(mask: str, output: str, kind: str) -> None:
    """Polygonize with GDAL over the whole band and write the features in chunks."""
    import geopandas as gpd
    import pandas as pd
    import pyogrio
    import rasterio
    import rasterio.features
    import shapely

    keep = OPTIONS[kind].get("classes")
    pyogrio.set_gdal_config_options({"OGR_SQLITE_SYNCHRONOUS": "OFF"})  # as ours stages
    with rasterio.open(mask) as src:
        band = rasterio.band(src, 1)
        if keep is not None:  # buildings: 0/1, class 1 kept, so the band is its own mask
            if keep != [1]:
                raise SystemExit(f"{kind}: --method gdal keeps class 1 of a 0/1 raster only")
            shapes = rasterio.features.shapes(band, mask=band, transform=src.transform)
        else:
            shapes = rasterio.features.shapes(band, transform=src.transform)
        crs = src.crs.to_wkt()
        geoms: list = []
        values: list[int] = []
        vertices = 0
        started = False

        def flush() -> None:
            nonlocal geoms, values, vertices, started
            array = np.empty(len(geoms), dtype=object)
            array[:] = geoms
            bad = ~shapely.is_valid(array)
            if bad.any():
                array[bad] = shapely.make_valid(array[bad])
            frame = gpd.GeoDataFrame(
                {"class_id": pd.Series(values, dtype="int32"),
                 "area_m2": pd.Series(shapely.area(array), dtype="float64")},
                geometry=gpd.GeoSeries(array, crs=crs))
            pyogrio.write_dataframe(frame, output, layer=Path(output).stem, driver="GPKG",
                                    geometry_type="Polygon", append=started,
                                    promote_to_multi=False)
            started = True
            geoms, values, vertices = [], [], 0

        for geojson, value in shapes:
            rings = [shapely.linearrings(np.asarray(r)) for r in geojson["coordinates"]]
            geoms.append(shapely.polygons(rings[0], rings[1:] or None))
            values.append(int(value))
            vertices += sum(len(r) for r in geojson["coordinates"])
            if len(geoms) >= 20_000 or vertices >= 500_000:
                flush()
        if geoms or not started:
            flush()


def child(mask: str, output: str, kind: str, method: str, block_size: int) -> None:
    """Vectorize in this process and print its peak memory, time and result as JSON."""
    import pyogrio
    import shapely

    if method == "ours":
        from glnet_geo.vectorize import vectorize_raster

    base = peak_rss_mib()
    start = time.perf_counter()
    if method == "ours":
        vectorize_raster(mask, output, block_size=block_size, overwrite=True, **OPTIONS[kind])
    else:
        polygonize_gdal(mask, output, kind)
    seconds = time.perf_counter() - start
    peak = peak_rss_mib()
    features = vertices = largest = 0
    areas: dict[int, float] = {}
    with pyogrio.open_arrow(output, columns=["class_id", "area_m2"], batch_size=10_000,
                            use_pyarrow=True) as (meta, reader):
        for batch in reader:
            counts = shapely.get_num_coordinates(
                shapely.from_wkb(batch.column(meta["geometry_name"])))
            features += len(counts)
            vertices += int(counts.sum())
            largest = max(largest, int(counts.max(initial=0)))
            ids = batch.column("class_id").to_numpy()
            area = batch.column("area_m2").to_numpy()
            for value in np.unique(ids).tolist():
                areas[value] = areas.get(value, 0.0) + float(area[ids == value].sum())
    print(json.dumps({"seconds": seconds, "peak_mib": peak, "import_mib": base,
                      "features": features, "vertices": vertices, "largest": largest,
                      "areas": areas}))


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


METHODS = ("ours", "gdal")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[4096, 16384])
    parser.add_argument("--kinds", nargs="+", default=list(KINDS), choices=list(KINDS))
    parser.add_argument("--method", nargs="+", default=["ours"], choices=METHODS)
    parser.add_argument("--block-size", type=int, default=1024)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--child", nargs=4, metavar=("MASK", "OUTPUT", "KIND", "METHOD"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child, block_size=args.block_size)
        return

    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        print(f"machine: {machine()}; block size {args.block_size} px")
        print(f"{'raster':>29} {'method':>6} {'features':>9} {'vertices':>10} {'largest':>9} "
              f"{'time s':>8} {'peak MiB':>9} {'after import MiB':>17} {'area vs first':>14}")
        for kind in args.kinds:
            for size in args.sizes:
                mask = Path(tmp) / f"{kind}-{size}.tif"
                make_raster(mask, kind, size)
                first = None
                for method in args.method:
                    out = Path(tmp) / f"{kind}-{size}-{method}.gpkg"
                    done = subprocess.run(
                        [sys.executable, __file__, "--child", str(mask), str(out), kind,
                         method, "--block-size", str(args.block_size)],
                        capture_output=True, text=True)
                    if done.returncode:
                        sys.exit(f"{kind} {size} {method}: vectorizing failed:\n{done.stderr}")
                    result = json.loads(done.stdout.strip().splitlines()[-1])
                    areas = {int(k): v for k, v in result["areas"].items()}
                    first = first or areas
                    # largest relative difference of a class's total area from the first method
                    diff = max(abs(areas.get(c, 0.0) - a) / a for c, a in first.items() if a)
                    print(f"{kind + ' ' + str(size) + '^2':>29} {method:>6} "
                          f"{result['features']:>9} {result['vertices']:>10} "
                          f"{result['largest']:>9} {result['seconds']:>8.1f} "
                          f"{result['peak_mib']:>9.0f} {result['import_mib']:>17.0f} "
                          f"{diff:>14.1e}", flush=True)
                    out.unlink()
                mask.unlink()


if __name__ == "__main__":
    main()
