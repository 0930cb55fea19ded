"""Right-angled building outlines: ``--regularize`` against the ``buildingregulariser`` package.

Building footprints are traced (``vectorize_raster``, 4-connected, 1 m pixels
in UTM, so that pixels and the CRS's units coincide and both tools' default
tolerances mean the same) from seeded synthetic sparse building scenes
(:func:`glnet_geo.datasets.synthetic.generate_sparse_scene`, roofs of 10-28 px,
touching roofs merged into L and T shapes), in two sets:

- ``clean``: the rasterized roofs (pixel staircases only);
- ``noisy``: boundary pixels flipped with probability 0.3, as a classifier's
  outlines are.

Each footprint is then regularized by:

- ``ours``: :func:`glnet_geo.vectorize.regularize.regularize_polygon` (what
  ``--regularize`` runs), with the same validity repair the pipeline applies;
- ``br``: ``buildingregulariser.regularize_geodataframe`` with its defaults
  (45 degree edges and circles allowed), one process;
- ``br-90``: the same with ``allow_45_degree=False, allow_circles=False``
  (right angles only, what ``--regularize`` aims at);
- ``br-90-1px``: right angles only and ``simplify_tolerance=1.0``, the 1 px
  Douglas-Peucker tolerance ``--regularize`` applies before snapping (the
  default, 0.5, keeps most of a pixel staircase).

Measures, per method, over all footprints of a set:

- right angles: the share of edges within 5 degrees of the dominant
  orientation or its perpendicular, the dominant orientation being the
  direction, modulo 90 degrees, that the most edge length lies within 5
  degrees of (neither tool's own estimate): *own*, that of the output itself
  (a pixel staircase scores 100 % there: its edges are all horizontal or
  vertical), and *true*, that of the true roof (what a regularized outline
  should follow);
- IoU raw: the mean intersection over union of each output with its traced
  footprint (a dropped footprint counts 0); IoU truth: the same with the true
  roof it was traced from (the roof polygons the scene was rasterized from);
- vertices: mean per footprint; valid: share of valid outputs;
- time: wall time of the regularization alone, all footprints, one core.

Both run in this one process, one after the other, on the same footprints:
on a shared machine, read the ratios rather than the seconds.

Usage:
    python benchmarks/regularize_compare.py [--size 2048] [--seeds 0 1] [--workdir DIR]

Needs ``pip install buildingregulariser`` (not a dependency of glnet-geo).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from vectorize_memory import machine

PIXEL = 1.0  # metres: pixel units = CRS units
ORIGIN = (500_000.0, 4_000_000.0)
CRS = "EPSG:32633"
RIGHT_ANGLE_TOLERANCE = 5.0  # degrees
NOISE = 0.3


def scene_rasters(size: int, seed: int) -> tuple[np.ndarray, np.ndarray, list]:
    """The clean and noisy building masks of one sparse scene, and its true roofs (map)."""
    import shapely

    from glnet_geo.datasets.synthetic import SparseSceneParams, generate_sparse_scene

    params = SparseSceneParams(building_side=(10, 28), building_spacing=32, occupancy=0.7,
                               village_radius=(80, 140), farm_spacing=500)
    scene = generate_sparse_scene(size, seed=seed, params=params)
    clean = (scene.label == 1).astype(np.uint8)
    rng = np.random.default_rng(seed + 1000)
    padded = np.pad(clean, 1)
    neighbours = (padded[:-2, 1:-1] + padded[2:, 1:-1] + padded[1:-1, :-2]
                  + padded[1:-1, 2:])
    boundary = np.where(clean == 1, neighbours < 4, neighbours > 0)
    flip = boundary & (rng.random(clean.shape) < NOISE)
    noisy = np.where(flip, 1 - clean, clean).astype(np.uint8)
    roofs = scene.features.geometry[scene.features.class_id == 1].to_numpy()
    x0, y0 = ORIGIN
    roofs = shapely.transform(roofs, lambda xy: np.column_stack(
        [x0 + xy[:, 0] * PIXEL, y0 - xy[:, 1] * PIXEL]))
    return clean, noisy, list(roofs)


def trace(mask: np.ndarray, workdir: Path, name: str):
    """Footprints of a 0/1 mask as traced by ``vectorize_raster`` (a GeoDataFrame)."""
    import pyogrio
    import rasterio
    from rasterio.transform import from_origin

    from glnet_geo.vectorize import vectorize_raster

    path = workdir / f"{name}.tif"
    with rasterio.open(path, "w", driver="GTiff", width=mask.shape[1], height=mask.shape[0],
                       count=1, dtype="uint8", crs=CRS,
                       transform=from_origin(*ORIGIN, PIXEL, PIXEL)) as dst:
        dst.write(mask, 1)
    out = vectorize_raster(path, workdir / f"{name}.gpkg", classes=[1], overwrite=True)
    frame = pyogrio.read_dataframe(out, layer=out.stem)
    frame = frame[frame.area >= 16 * PIXEL * PIXEL].reset_index(drop=True)  # not specks
    frame["fid"] = np.arange(len(frame))
    return frame[["fid", "geometry"]]


def run_ours(frame):
    """Regularize each footprint as ``--regularize`` does; returns (geometries, seconds)."""
    from glnet_geo.vectorize.blocks import geometry_array, valid_polygons
    from glnet_geo.vectorize.regularize import regularize_polygon

    start = time.perf_counter()
    out = valid_polygons(geometry_array([regularize_polygon(g) for g in frame.geometry]))
    return list(out), time.perf_counter() - start


#: buildingregulariser's configurations compared.
BR_OPTIONS = {
    "br": {},
    "br-90": dict(allow_45_degree=False, allow_circles=False),
    "br-90-1px": dict(allow_45_degree=False, allow_circles=False, simplify_tolerance=1.0),
}


def run_br(frame, options: dict):
    """Regularize with buildingregulariser (one core); returns (geometries by fid, seconds)."""
    import shapely
    from buildingregulariser import regularize_geodataframe

    start = time.perf_counter()
    result = regularize_geodataframe(frame, num_cores=1, **options)
    seconds = time.perf_counter() - start
    by_fid: dict[int, list] = {}
    for fid, geom in zip(result["fid"], result.geometry, strict=True):
        by_fid.setdefault(int(fid), []).append(geom)
    empty = shapely.Polygon()
    out = [shapely.union_all(by_fid[f]) if f in by_fid else empty for f in frame["fid"]]
    return out, seconds


def edge_angles(geom) -> tuple[np.ndarray, np.ndarray]:
    """Directions (degrees modulo 90) and lengths of all the edges of a polygonal geometry."""
    import shapely

    angles, lengths = [], []
    for part in shapely.get_parts(geom):
        if part.is_empty or part.geom_type != "Polygon":
            continue
        for ring in (part.exterior, *part.interiors):
            xy = np.asarray(ring.coords)
            d = np.diff(xy, axis=0)
            n = np.hypot(d[:, 0], d[:, 1])
            keep = n > 1e-9
            angles.append(np.degrees(np.arctan2(d[keep, 1], d[keep, 0])) % 90.0)
            lengths.append(n[keep])
    if not angles:
        return np.zeros(0), np.zeros(0)
    return np.concatenate(angles), np.concatenate(lengths)


def dominant_orientation(angles: np.ndarray, lengths: np.ndarray) -> float:
    """The direction (mod 90) that the most edge length lies within the tolerance of."""
    return max(angles.tolist(), key=lambda a: lengths[_near(angles, a)].sum())


def _near(angles: np.ndarray, reference: float) -> np.ndarray:
    d = np.abs(angles - reference) % 90.0
    return np.minimum(d, 90.0 - d) <= RIGHT_ANGLE_TOLERANCE


def right_angle_edges(geom, reference: float | None = None) -> tuple[int, int]:
    """(edges within the tolerance of ``reference`` or its perpendicular, all edges).

    ``reference``: an orientation in degrees mod 90 (None: the output's own dominant one).
    """
    angles, lengths = edge_angles(geom)
    if not len(angles):
        return 0, 0
    if reference is None:
        reference = dominant_orientation(angles, lengths)
    return int(_near(angles, reference).sum()), len(angles)


def iou(a, b) -> float:
    if a.is_empty or b.is_empty:
        return 0.0
    union = a.union(b).area
    return a.intersection(b).area / union if union else 0.0


def measure(raw, out, truth, seconds: float) -> dict:
    import shapely

    roofs = np.asarray(truth, dtype=object)
    tree = shapely.STRtree(roofs)
    own = [0, 0]
    true = [0, 0]
    truth_iou = []
    for footprint, geom in zip(raw, out, strict=True):
        r, t = right_angle_edges(geom)
        own[0], own[1] = own[0] + r, own[1] + t
        near = tree.query(footprint, predicate="intersects")
        best = max(near, key=lambda i: roofs[i].intersection(footprint).area, default=None)
        if best is None:
            truth_iou.append(0.0)
            continue
        truth_iou.append(iou(geom, roofs[best]))
        r, t = right_angle_edges(geom, dominant_orientation(*edge_angles(roofs[best])))
        true[0], true[1] = true[0] + r, true[1] + t
    return {
        "right": own[0] / max(own[1], 1),
        "right_true": true[0] / max(true[1], 1),
        "iou_raw": float(np.mean([iou(g, r) for g, r in zip(out, raw, strict=True)])),
        "iou_truth": float(np.mean(truth_iou)),
        "vertices": float(np.mean([shapely.get_num_coordinates(g) for g in out])),
        "valid": float(np.mean([g.is_valid and not g.is_empty for g in out])),
        "seconds": seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()

    import buildingregulariser
    import geopandas as gpd
    import pandas as pd
    import shapely.affinity

    print(f"machine: {machine()}; buildingregulariser {buildingregulariser.__version__}; "
          f"scenes {args.size}^2 px, seeds {args.seeds}")
    print(f"{'set':>6} {'method':>10} {'footprints':>10} {'right (own)':>11} "
          f"{'right (true)':>12} {'IoU raw':>8} {'IoU truth':>9} {'vertices':>8} {'valid':>6} "
          f"{'time s':>7} {'time/ours':>9}")
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        sets: dict[str, list] = {"clean": [], "noisy": []}
        truth: list = []
        for seed in args.seeds:  # scenes side by side would overlap: seeds are shifted
            clean, noisy, roofs = scene_rasters(args.size, seed)
            shift = seed * 2 * args.size * PIXEL
            for name, mask in (("clean", clean), ("noisy", noisy)):
                frame = trace(mask, Path(tmp), f"{name}-{seed}")
                sets[name].append(frame.set_geometry(frame.geometry.translate(shift)))
            truth += [shapely.affinity.translate(r, shift) for r in roofs]
        for name, frames in sets.items():
            frame = gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), crs=CRS)
            frame["fid"] = np.arange(len(frame))
            raw = list(frame.geometry)
            results = {}
            ours, seconds = run_ours(frame)
            results["ours"] = measure(raw, ours, truth, seconds)
            for method, options in BR_OPTIONS.items():
                out, seconds = run_br(frame, options)
                results[method] = measure(raw, out, truth, seconds)
            base = results["ours"]["seconds"]
            for method, r in results.items():
                print(f"{name:>6} {method:>10} {len(raw):>10} {r['right']:>11.1%} "
                      f"{r['right_true']:>12.1%} "
                      f"{r['iou_raw']:>8.3f} {r['iou_truth']:>9.3f} {r['vertices']:>8.1f} "
                      f"{r['valid']:>6.1%} {r['seconds']:>7.2f} {r['seconds'] / base:>9.2f}",
                      flush=True)


if __name__ == "__main__":
    main()
