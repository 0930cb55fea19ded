"""Right-angled building outlines from jagged pixel polygons.

A building traced from a class raster follows the pixel staircase and the
classifier's noise. :func:`regularize_polygon` replaces it by a polygon whose
edges all run along one of two perpendicular directions: the building's
dominant orientation and its normal.

The steps, for each ring:

1. **Orientation**: the direction of the sides of the minimum-area rotated
   rectangle around the polygon, modulo 90 degrees.
2. **Snapping**: in a frame rotated to that orientation, every simplified edge
   becomes horizontal or vertical, whichever is nearer; consecutive edges with
   the same direction merge into one line placed at their length-weighted mean
   offset, so that jagged sides become straight sides through their middle.
3. **Short sides**: while a side is shorter than ``min_edge`` (and more than
   four remain), it is removed and its two neighbours, which are parallel,
   merge. A jagged rectangle therefore ends with exactly four corners.

Coordinates are those of the input (glnet-geo calls it in pixel units, so the
tolerances are in pixels). The polygon falls back to its oriented,
area-preserving rectangle when snapping gives no valid polygon.
"""

from __future__ import annotations

import math

import numpy as np
import shapely
from shapely import affinity
from shapely.geometry import MultiPolygon, Polygon

#: Douglas-Peucker tolerance applied before snapping, in input units (pixels).
DEFAULT_TOLERANCE = 1.0
#: Sides shorter than this (input units) are merged away, at least this long...
DEFAULT_MIN_EDGE = 3.0
#: ...and at least this fraction of the square root of the polygon's area.
MIN_EDGE_FRACTION = 0.15


def dominant_orientation(polygon: Polygon) -> float:
    """Dominant edge direction of a polygon, in degrees within [0, 90).

    The direction of the sides of the polygon's minimum-area rotated rectangle:
    robust to pixel staircases and to noise along the outline (on noisy,
    rasterized rectangles it is within a few degrees of the truth, where
    length-weighted edge directions of a simplified outline are not).

    Args:
        polygon: the outline.

    Returns:
        The angle, counter-clockwise from the x axis, modulo 90 degrees.

    """
    rect = np.asarray(shapely.oriented_envelope(polygon).exterior.coords)
    if len(rect) < 3:
        return 0.0
    dx, dy = rect[1] - rect[0]
    return math.degrees(math.atan2(dy, dx)) % 90.0


def _sides(xy: np.ndarray) -> tuple[list[bool], list[float], list[float]]:
    """Snap the edges of a closed ring to horizontal/vertical runs.

    Returns:
        Per run: whether it is horizontal, its offset (y for horizontal runs,
        x for vertical ones) and its length, consecutive runs alternating in
        direction (cyclically).

    """
    d = np.diff(xy, axis=0)
    length = np.hypot(d[:, 0], d[:, 1])
    keep = length > 0
    d, length, start, end = d[keep], length[keep], xy[:-1][keep], xy[1:][keep]
    horizontal = np.abs(d[:, 0]) >= np.abs(d[:, 1])
    mid = (start + end) / 2.0
    offset = np.where(horizontal, mid[:, 1], mid[:, 0])
    runs_h: list[bool] = []
    runs_sum: list[float] = []
    runs_len: list[float] = []
    for h, o, n in zip(horizontal.tolist(), offset.tolist(), length.tolist(), strict=True):
        if runs_h and runs_h[-1] == h:
            runs_sum[-1] += o * n
            runs_len[-1] += n
        else:
            runs_h.append(h)
            runs_sum.append(o * n)
            runs_len.append(n)
    if len(runs_h) > 1 and runs_h[0] == runs_h[-1]:  # the ring closes inside a run
        runs_sum[0] += runs_sum.pop()
        runs_len[0] += runs_len.pop()
        runs_h.pop()
    return runs_h, [s / n for s, n in zip(runs_sum, runs_len, strict=True)], runs_len


def _corners(horizontal: list[bool], offset: list[float]) -> np.ndarray:
    """Corner k is where run k meets run k+1 (cyclically)."""
    n = len(offset)
    out = np.empty((n, 2))
    for k in range(n):
        a, b = offset[k], offset[(k + 1) % n]
        out[k] = (b, a) if horizontal[k] else (a, b)
    return out


def _side_lengths(corners: np.ndarray) -> np.ndarray:
    """Length of run k: from corner k-1 to corner k."""
    return np.hypot(*(corners - np.roll(corners, 1, axis=0)).T)


def _snap_ring(xy: np.ndarray, tolerance: float, min_edge: float) -> np.ndarray | None:
    """Right-angled version of a closed ring in the rotated frame, or None."""
    ring = shapely.simplify(shapely.linearrings(xy), tolerance, preserve_topology=False)
    horizontal, offset, weight = _sides(np.asarray(ring.coords))
    if len(offset) < 4 or len(offset) % 2:
        return None
    while len(offset) > 4:
        corners = _corners(horizontal, offset)
        lengths = _side_lengths(corners)
        k = int(np.argmin(lengths))
        if lengths[k] >= min_edge:
            break
        n = len(offset)
        prev, nxt = (k - 1) % n, (k + 1) % n
        w = weight[prev] + weight[nxt]
        merged = (offset[prev] * weight[prev] + offset[nxt] * weight[nxt]) / w
        offset[prev], weight[prev] = merged, w
        for i in sorted((k, nxt), reverse=True):
            del horizontal[i], offset[i], weight[i]
    corners = _corners(horizontal, offset)
    return np.vstack([corners, corners[:1]])


def _oriented_rectangle(polygon: Polygon, angle: float) -> Polygon:
    """Fit a rectangle along ``angle`` through the polygon's centroid, with its area."""
    centroid = polygon.centroid
    flat = affinity.rotate(polygon, -angle, origin=centroid)
    minx, miny, maxx, maxy = flat.bounds
    scale = math.sqrt(polygon.area / max((maxx - minx) * (maxy - miny), 1e-12))
    rect = affinity.scale(shapely.box(minx, miny, maxx, maxy), scale, scale, origin=centroid)
    return affinity.rotate(rect, angle, origin=centroid)


def regularize_polygon(polygon: Polygon | MultiPolygon, *,
                       tolerance: float = DEFAULT_TOLERANCE,
                       min_edge: float = DEFAULT_MIN_EDGE) -> Polygon | MultiPolygon:
    """Right-angled outline of a building polygon.

    Args:
        polygon: the traced outline (a MultiPolygon is regularized part by part).
        tolerance: Douglas-Peucker tolerance applied before snapping.
        min_edge: shortest side kept; the effective minimum is also at least
            ``MIN_EDGE_FRACTION`` times the square root of the polygon's area.

    Returns:
        A valid polygon whose sides are parallel or perpendicular to the
        polygon's dominant orientation (holes are snapped the same way and are
        dropped when they collapse).

    """
    if isinstance(polygon, MultiPolygon):
        parts = [regularize_polygon(p, tolerance=tolerance, min_edge=min_edge)
                 for p in polygon.geoms]
        return shapely.make_valid(MultiPolygon([p for p in parts if not p.is_empty]))
    if polygon.is_empty or polygon.area <= 0:
        return polygon
    angle = dominant_orientation(polygon)
    origin = polygon.centroid
    flat = affinity.rotate(polygon, -angle, origin=origin)
    edge = max(min_edge, MIN_EDGE_FRACTION * math.sqrt(polygon.area))
    shell = _snap_ring(np.asarray(flat.exterior.coords), tolerance, edge)
    if shell is None:
        return _oriented_rectangle(polygon, angle)
    holes = []
    for interior in flat.interiors:
        hole = _snap_ring(np.asarray(interior.coords), tolerance, edge)
        if hole is not None and Polygon(hole).is_valid and Polygon(hole).area > 0:
            holes.append(hole)
    snapped = Polygon(shell, holes)
    if not snapped.is_valid:
        snapped = Polygon(shell)
    if not snapped.is_valid or snapped.area <= 0:
        return _oriented_rectangle(polygon, angle)
    return affinity.rotate(snapped, angle, origin=origin)
