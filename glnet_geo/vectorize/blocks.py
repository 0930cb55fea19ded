"""Polygonizing one block of a class raster.

The raster is read in square blocks (``block_size`` px), row by row
(:func:`block_rows`), with its dataset mask: nodata and masked pixels, and
pixels of classes not kept, produce no polygon (:func:`read_block`). Each
block is polygonized by :func:`rasterio.features.shapes` in *global pixel
coordinates* (exact integers, so pieces from neighbouring blocks meet exactly
along the seam); the pieces that touch an inner block edge are flagged and
burnt along the block's four edges, which is how
:mod:`glnet_geo.vectorize.seams` tells which pieces belong to one region
(:func:`polygonize_block`).

Simplification (``tolerance_px``) is topology-preserving coverage
simplification (:func:`shapely.coverage_simplify`) applied to all the pieces
of a block together, nodata and dropped classes included, so neighbouring
regions keep sharing their edges. The block edges are not simplified: a
region boundary keeps one vertex where it crosses a block seam.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import rasterio
    from affine import Affine
    from rasterio.windows import Window

#: Side of the square blocks read and polygonized at a time, in pixels.
DEFAULT_BLOCK_SIZE = 1024


class Connectivity(IntEnum):
    """Which neighbouring pixels of one class form one region."""

    FOUR = 4
    """Edge neighbours only (the default of GDAL and rasterio)."""
    EIGHT = 8
    """Edge and corner neighbours."""


def block_rows(width: int, height: int, block_size: int) -> Iterator[list[Window]]:
    """Rows of square block windows covering a raster, top to bottom, left to right."""
    from rasterio.windows import Window

    for row in range(0, height, block_size):
        yield [Window(col, row, min(block_size, width - col), min(block_size, height - row))
               for col in range(0, width, block_size)]


def read_block(src: rasterio.io.DatasetReader, window: Window, *,
               classes: np.ndarray | None = None,
               probabilities: rasterio.io.DatasetReader | None = None
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Read one block: its class values, the pixels to polygonize and their confidence.

    Args:
        src: the class raster.
        window: the block.
        classes: class ids kept (sorted; None: all).
        probabilities: a raster with one band per class (or one confidence band).

    Returns:
        The class values, the valid pixels of a kept class, and each pixel's
        probability of its class (None without ``probabilities``).

    """
    from glnet_geo.io.reader import reading

    with reading(src, window, "class raster"):
        data = src.read(1, window=window)
        valid = src.read_masks(1, window=window) > 0
    if classes is not None:
        valid &= np.isin(data, classes)
    conf = None if probabilities is None else _confidence(probabilities, window, data)
    return data, valid, conf


def _confidence(probabilities: rasterio.io.DatasetReader, window: Window,
                data: np.ndarray) -> np.ndarray:
    """Per-pixel confidence: the probability band of each pixel's class (0..1)."""
    from glnet_geo.io.reader import reading

    with reading(probabilities, window, "probabilities raster"):
        probs = probabilities.read(window=window)
    if probs.shape[0] == 1:
        conf = probs[0].astype(np.float64)
    else:
        index = np.clip(data.astype(np.int64), 0, probs.shape[0] - 1)
        conf = np.take_along_axis(probs, index[None], axis=0)[0].astype(np.float64)
        conf[(data < 0) | (data >= probs.shape[0])] = np.nan
    if np.issubdtype(probs.dtype, np.integer):
        conf /= np.iinfo(probs.dtype).max
    return conf


@dataclass
class Block:
    """The pieces of one block, in global pixel coordinates."""

    geometries: np.ndarray          # (n,) shapely geometries (simplified when asked)
    class_ids: np.ndarray           # (n,) int64
    pixels: np.ndarray              # (n,) float64 pixel count (= unsimplified pixel area)
    confidence: np.ndarray | None   # (n,) sum of the class probability over the piece
    on_seam: np.ndarray             # (n,) bool: touches an inner block edge
    on_bottom: np.ndarray           # (n,) bool: touches the inner bottom edge
    edges: Edges | None            # seam pieces on the block's four edges (None: no seam piece)


@dataclass
class Edges:
    """Piece index + 1 (0: no seam piece) of each pixel along the four edges of a block."""

    top: np.ndarray
    bottom: np.ndarray
    left: np.ndarray
    right: np.ndarray


def polygonize_block(data: np.ndarray, valid: np.ndarray, window: Window, *,
                     raster_width: int, raster_height: int, connectivity: Connectivity,
                     tolerance_px: float, confidence: np.ndarray | None) -> Block:
    """Polygonize one block into pieces, flag those on inner seams, label them.

    Args:
        data: class values of the block.
        valid: pixels to polygonize (valid data of a kept class).
        window: the block's window in the raster.
        raster_width: raster width, to tell inner seams from raster edges.
        raster_height: raster height, likewise.
        connectivity: 4 or 8.
        tolerance_px: coverage simplification tolerance in pixels (0: none).
        confidence: per-pixel confidence of the pixel's class, or None.

    """
    import rasterio.features
    import shapely
    from affine import Affine
    from rasterio.windows import Window

    offset = Affine.translation(window.col_off, window.row_off)
    if data.dtype == np.int8:
        data = data.astype(np.int16)
    found = list(rasterio.features.shapes(data, mask=valid, connectivity=int(connectivity),
                                          transform=offset))
    geoms = geometry_array([_polygon(g) for g, _ in found])
    class_ids = np.array([int(v) for _, v in found], dtype=np.int64)
    geoms = valid_polygons(geoms)
    pixels = shapely.area(geoms) if len(geoms) else np.zeros(0)

    bounds = shapely.bounds(geoms) if len(geoms) else np.zeros((0, 4))
    c0, r0 = window.col_off, window.row_off
    c1, r1 = c0 + window.width, r0 + window.height
    on_left = (bounds[:, 0] == c0) & (c0 > 0)
    on_top = (bounds[:, 1] == r0) & (r0 > 0)
    on_right = (bounds[:, 2] == c1) & (c1 < raster_width)
    on_bottom = (bounds[:, 3] == r1) & (r1 < raster_height)
    on_seam = on_left | on_top | on_right | on_bottom

    edges = None
    if on_seam.any():
        seam = np.flatnonzero(on_seam)
        h, w = window.height, window.width
        edges = Edges(*(_burn(geoms[seam], seam + 1, strip).ravel() for strip in (
            Window(c0, r0, w, 1), Window(c0, r1 - 1, w, 1),
            Window(c0, r0, 1, h), Window(c1 - 1, r0, 1, h))))
    conf_sum = None
    if confidence is not None:
        labels = _burn(geoms, np.arange(1, len(geoms) + 1), window)
        conf_sum = np.bincount(labels.ravel(), weights=confidence.ravel(),
                               minlength=len(geoms) + 1)[1:]

    if tolerance_px > 0 and len(geoms):
        geoms = _simplify_block(geoms, valid, offset, connectivity, tolerance_px)
    return Block(geoms, class_ids, pixels, conf_sum, on_seam, on_bottom, edges)


def _burn(geoms: np.ndarray, values: np.ndarray, window: Window,
          band_rows: int = 32) -> np.ndarray:
    """Rasterize pixel-coordinate pieces over ``window`` (each pixel: its piece's value, or 0).

    GDAL's polygon fill visits every edge of a polygon on every row, so large,
    intricate regions are clipped to bands of ``band_rows`` rows first.
    """
    import rasterio.features
    import shapely
    from affine import Affine

    out = np.zeros((window.height, window.width), np.int32)
    c0, r0, c1 = window.col_off, window.row_off, window.col_off + window.width
    bounds = shapely.bounds(geoms)
    for top in range(0, window.height, band_rows):
        rows = min(band_rows, window.height - top)
        y0, y1 = r0 + top, r0 + top + rows
        near = np.flatnonzero((bounds[:, 1] < y1) & (bounds[:, 3] > y0)
                              & (bounds[:, 0] < c1) & (bounds[:, 2] > c0))
        if not len(near):
            continue
        clipped = shapely.clip_by_rect(geoms[near], c0, y0, c1, y1)
        hit = ~shapely.is_empty(clipped)
        if not hit.any():
            continue
        rasterio.features.rasterize(zip(clipped[hit], values[near][hit], strict=True),
                                    out=out[top:top + rows],
                                    transform=Affine.translation(c0, y0))
    return out


def _polygon(geojson: dict) -> Any:
    """Build a shapely Polygon from a GeoJSON polygon of :func:`rasterio.features.shapes`."""
    import shapely

    rings = [shapely.linearrings(np.asarray(ring)) for ring in geojson["coordinates"]]
    return shapely.polygons(rings[0], rings[1:] or None)


def geometry_array(items: Sequence[Any]) -> np.ndarray:
    """Make a 1-D object array of geometries (never a 2-D array of coordinates)."""
    out = np.empty(len(items), dtype=object)
    out[:] = items
    return out


def valid_polygons(geoms: np.ndarray) -> np.ndarray:
    """``shapely.make_valid`` where needed (8-connected pieces touch themselves at corners)."""
    import shapely

    if len(geoms):
        bad = ~shapely.is_valid(geoms)
        if bad.any():
            geoms = geoms.copy()
            geoms[bad] = [_polygonal(g) for g in shapely.make_valid(geoms[bad])]
    return geoms


def _polygonal(geom: Any) -> Any:
    """Keep the polygonal part of a geometry (make_valid may add lines or points)."""
    import shapely

    if geom.geom_type in ("Polygon", "MultiPolygon"):
        return geom
    parts = [p for p in shapely.get_parts(geom) if p.geom_type in ("Polygon", "MultiPolygon")]
    return shapely.union_all(parts) if parts else shapely.Polygon()


def _simplify_block(geoms: np.ndarray, valid: np.ndarray, offset: Affine,
                    connectivity: Connectivity, tolerance_px: float) -> np.ndarray:
    """Coverage-simplify a block's pieces together with the block's empty areas.

    The empty areas (nodata, dropped classes) join the coverage so that region
    edges facing them are simplified too; the block's outer edges stay fixed,
    so pieces still meet their neighbours exactly across seams. Edges are
    densified to every pixel corner first so that the coverage is edge-matched.
    """
    import rasterio.features
    import shapely
    from shapely.geometry import shape

    voids = [shape(g) for g, _ in rasterio.features.shapes(
        valid.astype(np.uint8), mask=~valid, connectivity=int(connectivity), transform=offset)]
    coverage = np.concatenate([geoms, valid_polygons(geometry_array(voids))])
    simplified = shapely.coverage_simplify(shapely.segmentize(coverage, 1.0), tolerance_px,
                                           simplify_boundary=False)
    # The vertices left are pixel corners: round off the densifier's float error.
    return shapely.transform(simplified[:len(geoms)], np.rint)
