"""Merge the pieces of one region that block seams cut apart, without a polygon overlay.

Block-wise polygonizing (:mod:`glnet_geo.vectorize.blocks`) cuts a region that
straddles block seams into pieces, one per block. The pieces are polygons in
integer pixel coordinates that meet only along the seams, which are straight
grid lines. :func:`dissolve` joins them by editing their outlines instead of
running a general overlay (:func:`shapely.union_all`), whose memory on a
region with millions of vertices is several hundred bytes per vertex:

1. Each piece's exterior ring is oriented counter-clockwise (the region on its
   left) and cut into segments; segments lying on a seam are cut into unit
   segments.
2. A unit segment on a seam that two pieces share (once in each direction) is
   inside the region: both copies are dropped.
3. The remaining segments are chained end to start. Where the region touches
   itself at a vertex (several segments leave it), each incoming segment goes
   on with the outgoing one at the sharpest turn to the left, so rings do not
   cross; a ring that still passes a vertex twice is split there, so every
   ring is simple.
4. The counter-clockwise ring is the region's exterior; clockwise rings are
   holes that the seams closed, to which the pieces' own holes (which never
   touch their block's edges) are added.

The result is the same polygon as ``shapely.union_all(pieces)`` for pieces of
one 4-connected region; anything else (several exteriors, parts that are not
polygons) falls back to that union.
"""

from __future__ import annotations

from array import array
from collections.abc import Sequence
from typing import Any

import numpy as np
import shapely


def dissolve(pieces: Sequence[Any], *, block_size: int, width: int, height: int) -> Any:
    """Union of the pieces of one 4-connected region cut by block seams.

    Args:
        pieces: Polygons in pixel coordinates (integer vertices), from
            different blocks of a grid of ``block_size`` px starting at 0.
        block_size: side of the blocks; seams are the lines x = k * block_size
            (0 < x < width) and y = k * block_size (0 < y < height).
        width: raster width in pixels.
        height: raster height in pixels.

    Returns:
        The region as one Polygon (a general union where the pieces are not
        what this expects).

    """
    pieces = np.asarray(pieces, dtype=object)
    if len(pieces) == 1:
        return pieces[0]
    if not (shapely.get_type_id(pieces) == 3).all():  # 3: Polygon
        return _union(pieces)
    rings = _rings(pieces, block_size=block_size, width=width, height=height)
    if rings is None:
        return _union(pieces)
    shells = [r for r in rings if _signed_area(r) > 0]
    if len(shells) != 1:
        return _union(pieces)
    holes = [shapely.linearrings(r) for r in rings if _signed_area(r) < 0]
    holes += [ring for piece in pieces for ring in piece.interiors]
    return shapely.Polygon(shapely.linearrings(shells[0]), holes)


def _union(pieces: np.ndarray) -> Any:
    return shapely.simplify(shapely.union_all(pieces), 0.0, preserve_topology=False)


def _signed_area(ring: np.ndarray) -> float:
    """Shoelace area of an open ring (positive: counter-clockwise)."""
    x, y = ring[:, 0], ring[:, 1]
    return 0.5 * float((x * np.roll(y, -1) - np.roll(x, -1) * y).sum())


def _rings(pieces: np.ndarray, *, block_size: int, width: int,
           height: int) -> list[np.ndarray] | None:
    """Trace the simple rings (open, int64 vertices) of the union of the exteriors."""
    exteriors = shapely.get_exterior_ring(pieces)
    clockwise = ~shapely.is_ccw(exteriors)
    exteriors[clockwise] = shapely.reverse(exteriors[clockwise])
    xy, ring = shapely.get_coordinates(exteriors, return_index=True)
    del exteriors
    if not np.array_equal(xy, np.rint(xy)):  # not pixel corners
        return None
    xy = xy.astype(np.int64)
    same = ring[1:] == ring[:-1]  # consecutive vertices of one ring form a segment
    start, end = xy[:-1][same], xy[1:][same]
    del xy, ring, same

    # Cut the segments lying on seams into unit segments; drop the unit
    # segments that two pieces share (they run both ways across the seam).
    on_x = ((start[:, 0] == end[:, 0]) & (start[:, 0] % block_size == 0)
            & (start[:, 0] > 0) & (start[:, 0] < width))
    on_y = ((start[:, 1] == end[:, 1]) & (start[:, 1] % block_size == 0)
            & (start[:, 1] > 0) & (start[:, 1] < height))
    seam = on_x | on_y
    units = _unit_segments(start[seam], end[seam])
    shared = _shared(*units, height=height)
    start = np.concatenate([start[~seam], units[0][~shared]])
    end = np.concatenate([end[~seam], units[1][~shared]])
    del units, shared, seam, on_x, on_y

    # Chain each segment to the one leaving its end.
    start_key = start[:, 0] * (height + 1) + start[:, 1]
    order = np.argsort(start_key, kind="stable")
    sorted_keys = start_key[order]
    end_key = end[:, 0] * (height + 1) + end[:, 1]
    first_out = np.searchsorted(sorted_keys, end_key, side="left")
    n_out = np.searchsorted(sorted_keys, end_key, side="right") - first_out
    del end_key
    if (n_out < 1).any():
        return None
    nxt = order[np.minimum(first_out, len(order) - 1)]
    for i in np.flatnonzero(n_out > 1).tolist():  # the region touches itself here
        back = start[i] - end[i]
        out = order[first_out[i]:first_out[i] + n_out[i]]
        ahead = end[out] - start[out]
        # Clockwise angle from the way back to each way out: the smallest keeps
        # the region's corner sector to the left and the rings from crossing.
        ccw = np.arctan2(back[0] * ahead[:, 1] - back[1] * ahead[:, 0], ahead @ back)
        nxt[i] = out[np.argmin(np.mod(-ccw, 2 * np.pi))]
    del order, first_out, n_out, end
    if len(np.unique(nxt)) != len(nxt):
        return None
    repeated = set(sorted_keys[1:][sorted_keys[1:] == sorted_keys[:-1]].tolist())
    del sorted_keys
    cycles = _simple_cycles(array("q", nxt.tobytes()), array("q", start_key.tobytes()), repeated)
    return [_drop_collinear(start[cycle]) for cycle in cycles]


def _unit_segments(start: np.ndarray, end: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cut axis-parallel integer segments into unit segments (same direction)."""
    step = np.sign(end - start)
    units = np.abs(end - start).sum(axis=1)
    owner = np.repeat(np.arange(len(start)), units)
    k = np.arange(len(owner)) - np.repeat(np.cumsum(units) - units, units)
    first = start[owner] + k[:, None] * step[owner]
    return first, first + step[owner]


def _shared(start: np.ndarray, end: np.ndarray, *, height: int) -> np.ndarray:
    """Which unit segments occur twice (in opposite directions)."""
    lo = np.minimum(start, end)
    key = (lo[:, 0] * (height + 1) + lo[:, 1]) * 2 + (start[:, 0] == end[:, 0])
    _, inverse, count = np.unique(key, return_inverse=True, return_counts=True)
    return count[inverse] > 1


def _simple_cycles(nxt: array, vertex: array, repeated: set[int]) -> list[np.ndarray]:
    """Cycles of the successor array, split where a cycle passes a vertex twice."""
    visited = bytearray(len(nxt))
    cycles = []
    for first in range(len(nxt)):
        if visited[first]:
            continue
        path = array("q")
        where: dict[int, int] = {}  # repeated vertex -> its index in path
        i = first
        while not visited[i]:
            visited[i] = 1
            v = vertex[i]
            if v in repeated:
                if v in where:  # a loop closed at v: it is a ring of its own
                    at = where[v]
                    loop = np.frombuffer(path, dtype=np.int64)[at:].copy()
                    del path[at:]
                    for s in loop.tolist():
                        where.pop(vertex[s], None)
                    cycles.append(loop)
                where[v] = len(path)
            path.append(i)
            i = nxt[i]
        cycles.append(np.frombuffer(path, dtype=np.int64).copy())
    return cycles


def _drop_collinear(ring: np.ndarray) -> np.ndarray:
    """Remove the vertices of an open ring where it goes straight on."""
    before = ring - np.roll(ring, 1, axis=0)
    after = np.roll(ring, -1, axis=0) - ring
    cross = before[:, 0] * after[:, 1] - before[:, 1] * after[:, 0]
    straight = (cross == 0) & ((before * after).sum(axis=1) > 0)
    return ring[~straight]
