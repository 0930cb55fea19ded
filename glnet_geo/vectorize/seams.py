"""Regions cut by block seams joined back: one region, one feature, however the blocks fell.

A piece (:mod:`glnet_geo.vectorize.blocks`) that touches no inner block edge
is a whole region: it is passed on at once. A piece that does is kept; the
pixels on both sides of each seam (the kept pieces are burnt along the
block's edges) tell which pieces belong to one region (:class:`DisjointSet`,
:func:`seam_pairs`). After each block row, every region that cannot grow into
the next row is dissolved (:func:`glnet_geo.vectorize.dissolve.dissolve`) and
passed on. So only one block row of seam pieces plus the pieces of regions
still growing downwards are in memory (a region that spans the raster is one
feature, and its outline is held whole).

Connectivity: with 4-connectivity (the default) pixels that touch only at a
corner are different regions; each region is a ``Polygon``. With
8-connectivity corner-touching pixels are one region, which is then a
``MultiPolygon`` whose parts touch at those corners (joined by a general
union, since its parts may nest).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from glnet_geo.vectorize.blocks import (
    DEFAULT_BLOCK_SIZE,
    Connectivity,
    Edges,
    block_rows,
    polygonize_block,
    read_block,
)
from glnet_geo.vectorize.dissolve import dissolve

if TYPE_CHECKING:
    import rasterio

#: Complete regions are passed on in chunks of at most this many vertices...
CHUNK_VERTICES = 500_000
#: ...or this many features.
CHUNK_FEATURES = 20_000


class DisjointSet:
    """Union-find over piece ids (path halving, union by size)."""

    def __init__(self) -> None:
        self.parent: dict[int, int] = {}
        self.size: dict[int, int] = {}

    def add(self, item: int) -> None:
        """Add ``item`` as a group of its own."""
        self.parent[item] = item
        self.size[item] = 1

    def find(self, item: int) -> int:
        """Return the representative of ``item``'s group."""
        parent = self.parent
        while parent[item] != item:
            parent[item] = parent[parent[item]]
            item = parent[item]
        return item

    def union(self, a: int, b: int) -> None:
        """Merge the groups of ``a`` and ``b``."""
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return
        if self.size[ra] < self.size[rb]:
            ra, rb = rb, ra
        self.parent[rb] = ra
        self.size[ra] += self.size.pop(rb)

    def discard(self, items: Iterable[int]) -> None:
        """Forget whole groups (all their members at once)."""
        for item in items:
            del self.parent[item]
            self.size.pop(item, None)


def seam_pairs(ids_a: np.ndarray, vals_a: np.ndarray, ids_b: np.ndarray,
                vals_b: np.ndarray, connectivity: Connectivity) -> np.ndarray:
    """Pairs of piece ids joined across a seam.

    ``ids_a[i]`` and ``ids_b[i]`` are the pieces of the two pixels facing each
    other across the seam (-1: no piece); with 8-connectivity ``a[i]`` also
    joins ``b[i-1]`` and ``b[i+1]``.
    """
    shifts = (0,) if connectivity is Connectivity.FOUR else (-1, 0, 1)
    pairs = []
    n = len(ids_a)
    for s in shifts:
        ia = slice(max(0, -s), n - max(0, s))
        ib = slice(max(0, s), n - max(0, -s))
        a, b = ids_a[ia], ids_b[ib]
        join = (a >= 0) & (b >= 0) & (vals_a[ia] == vals_b[ib])
        pairs.append(np.column_stack([a[join], b[join]]))
    return np.unique(np.concatenate(pairs), axis=0)


@dataclass
class Regions:
    """Complete regions waiting to be finished and written (pixel coordinates)."""

    geometries: list = field(default_factory=list)
    class_ids: list[int] = field(default_factory=list)
    pixels: list[float] = field(default_factory=list)
    confidence: list[float] = field(default_factory=list)
    vertices: int = 0

    def __len__(self) -> int:
        return len(self.geometries)

    def add(self, geometry: Any, class_id: int, pixels: float, confidence: float,
            vertices: int) -> None:
        """Add one region (``vertices``: its vertex count)."""
        self.geometries.append(geometry)
        self.class_ids.append(class_id)
        self.pixels.append(pixels)
        self.confidence.append(confidence)
        self.vertices += vertices

    def full(self) -> bool:
        """Whether the chunk is ready to be written."""
        return len(self) >= CHUNK_FEATURES or self.vertices >= CHUNK_VERTICES


@dataclass
class SeamPiece:
    """A piece touching an inner block edge, kept until its region is complete."""

    geometry: Any
    class_id: int
    pixels: float
    confidence: float
    on_bottom: bool


def iter_regions(src: rasterio.io.DatasetReader, *, block_size: int = DEFAULT_BLOCK_SIZE,
                 connectivity: Connectivity = Connectivity.FOUR,
                 classes: Sequence[int] | None = None, tolerance_px: float = 0.0,
                 probabilities: rasterio.io.DatasetReader | None = None
                 ) -> Iterator[Regions]:
    """Complete regions of a class raster, in chunks, block row by block row.

    Args:
        src: the class raster (checked by
            :func:`glnet_geo.vectorize.source.check_class_raster`).
        block_size: side of the blocks read at a time, in pixels.
        connectivity: 4 or 8.
        classes: class ids to keep (None: all).
        tolerance_px: coverage simplification tolerance in pixels (0: none).
        probabilities: a raster with one band per class (or one confidence band).

    Yields:
        Regions in pixel coordinates with their class, pixel count and summed
        confidence (NaN without probabilities), in chunks of at most about
        ``CHUNK_VERTICES`` vertices or ``CHUNK_FEATURES`` features.

    """
    import shapely

    width, height = src.width, src.height
    keep = None if classes is None else np.asarray(sorted(set(classes)))
    ids = DisjointSet()
    seam_pieces: dict[int, SeamPiece] = {}
    next_id = 0
    above_ids = np.full(width, -1, np.int64)    # pieces on the last pixel row of the row above
    above_vals = np.zeros(width, np.int64)
    done = Regions()
    rows = list(block_rows(width, height, block_size))
    for r, row in enumerate(rows):
        below_ids = np.full(width, -1, np.int64)
        below_vals = np.zeros(width, np.int64)
        left_ids = left_vals = None
        row_pieces: list[int] = []
        for window in row:
            data, valid, conf = read_block(src, window, classes=keep,
                                           probabilities=probabilities)
            block = polygonize_block(data, valid, window, raster_width=width,
                                     raster_height=height, connectivity=connectivity,
                                     tolerance_px=tolerance_px, confidence=conf)
            conf_sum = (block.confidence if block.confidence is not None
                        else np.full(len(block.class_ids), np.nan))
            # Whole regions go out at once; seam pieces get a global id.
            gid = np.full(len(block.class_ids) + 1, -1, np.int64)
            vertices = shapely.get_num_coordinates(block.geometries)
            for i in range(len(block.class_ids)):
                if not block.on_seam[i]:
                    done.add(block.geometries[i], int(block.class_ids[i]), block.pixels[i],
                             conf_sum[i], int(vertices[i]))
                    if done.full():
                        yield done
                        done = Regions()
                    continue
                seam_pieces[next_id] = SeamPiece(block.geometries[i], int(block.class_ids[i]),
                                                 block.pixels[i], conf_sum[i],
                                                 bool(block.on_bottom[i]))
                ids.add(next_id)
                row_pieces.append(next_id)
                gid[i + 1] = next_id
                next_id += 1
            edges = block.edges or Edges(*(np.zeros(n, np.int32) for n in (
                window.width, window.width, window.height, window.height)))
            vals = data.astype(np.int64)
            c0, c1 = window.col_off, window.col_off + window.width
            # Join with the block on the left (same rows) ...
            if left_ids is not None:
                for a, b in seam_pairs(left_ids, left_vals, gid[edges.left], vals[:, 0],
                                       connectivity):
                    ids.union(int(a), int(b))
            # ... and with the row above, one pixel wider on each side for corners.
            if r > 0:
                lo, hi = max(c0 - 1, 0), min(c1 + 1, width)
                top_ids = np.full(hi - lo, -1, np.int64)
                top_vals = np.zeros(hi - lo, np.int64)
                top_ids[c0 - lo:c0 - lo + window.width] = gid[edges.top]
                top_vals[c0 - lo:c0 - lo + window.width] = vals[0]
                for a, b in seam_pairs(above_ids[lo:hi], above_vals[lo:hi], top_ids, top_vals,
                                       connectivity):
                    ids.union(int(a), int(b))
            left_ids, left_vals = gid[edges.right], vals[:, -1]  # gid[0] = -1: no piece
            below_ids[c0:c1], below_vals[c0:c1] = gid[edges.bottom], vals[-1]
        # Regions that cannot reach the next block row are complete: dissolve them.
        last = r == len(rows) - 1
        growing = set() if last else {ids.find(p) for p in row_pieces
                                      if seam_pieces[p].on_bottom}
        groups: dict[int, list[int]] = defaultdict(list)
        for p in seam_pieces:
            root = ids.find(p)
            if root not in growing:
                groups[root].append(p)
        for members in groups.values():
            pieces = [seam_pieces.pop(p) for p in members]
            ids.discard(members)
            geometry = join_pieces([p.geometry for p in pieces], connectivity,
                                   block_size=block_size, width=width, height=height)
            class_id = pieces[0].class_id
            pixels = sum(p.pixels for p in pieces)
            confidence = sum(p.confidence for p in pieces)
            del pieces  # before yielding: a large region is then held once
            done.add(geometry, class_id, pixels, confidence,
                     shapely.get_num_coordinates(geometry))
            if done.full():
                yield done
                done = Regions()
        above_ids, above_vals = below_ids, below_vals
    if len(done):
        yield done


def join_pieces(pieces: Sequence[Any], connectivity: Connectivity, *, block_size: int,
                width: int, height: int) -> Any:
    """Join the pieces of one region from several blocks into its geometry.

    4-connected pieces are dissolved along the seams
    (:func:`glnet_geo.vectorize.dissolve.dissolve`); 8-connected ones, whose
    parts may nest, by a general union.
    """
    import shapely

    if len(pieces) == 1:
        return pieces[0]
    if connectivity is Connectivity.FOUR:
        return dissolve(pieces, block_size=block_size, width=width, height=height)
    return shapely.simplify(shapely.union_all(pieces), 0.0, preserve_topology=False)
