from __future__ import annotations

import numpy as np
import pytest
import rasterio.features
import shapely
from shapely import affinity

from glnet_geo.vectorize.regularize import dominant_orientation, regularize_polygon


def traced(truth, seed: int, noise: float = 0.3, size: int = 100):
    """The largest pixel polygon of ``truth`` rasterized, boundary pixels flipped at random."""
    rng = np.random.default_rng(seed)
    data = rasterio.features.rasterize([truth], out_shape=(size, size)).astype(np.uint8)
    padded = np.pad(data, 1)
    neighbours = padded[:-2, 1:-1] + padded[2:, 1:-1] + padded[1:-1, :-2] + padded[1:-1, 2:]
    flip = (neighbours > 0) & (neighbours < 4) & (rng.random(data.shape) < noise)
    data = np.where(flip, 1 - data, data).astype(np.uint8)
    pieces = [shapely.geometry.shape(g)
              for g, _ in rasterio.features.shapes(data, mask=data == 1)]
    return shapely.make_valid(max(pieces, key=lambda p: p.area))


def iou(a, b) -> float:
    return a.intersection(b).area / a.union(b).area


@pytest.mark.parametrize(("angle", "seed"), [(0, 0), (12, 1), (33, 2), (45, 3), (71, 4)])
def test_jagged_rectangle_becomes_a_rectangle(angle, seed):
    truth = affinity.translate(
        affinity.rotate(shapely.box(-22, -13, 22, 13), angle, origin=(0, 0)), 50, 50)
    outline = regularize_polygon(traced(truth, seed))
    assert outline.is_valid
    corners = np.asarray(outline.exterior.coords)[:-1]
    assert len(corners) == 4
    sides = np.diff(np.vstack([corners, corners[:1]]), axis=0)
    cosines = [abs(np.dot(a, b)) / np.linalg.norm(a) / np.linalg.norm(b)
               for a, b in zip(sides, np.roll(sides, 1, axis=0), strict=True)]
    assert max(cosines) < 1e-9  # right angles
    assert iou(outline, truth) >= 0.9
    assert dominant_orientation(outline) == pytest.approx(angle % 90, abs=3)


def test_l_shaped_building_keeps_its_six_corners():
    shape = shapely.box(0, 0, 50, 40).difference(shapely.box(25, 20, 50, 40))
    truth = affinity.translate(affinity.rotate(shape, 20, origin=(0, 0)), 30, 15)
    outline = regularize_polygon(traced(truth, seed=8))
    assert len(outline.exterior.coords) == 7
    assert iou(outline, truth) >= 0.9


def test_courtyard_hole_is_kept_and_squared():
    truth = shapely.box(20, 20, 80, 70).difference(shapely.box(40, 35, 60, 55))
    outline = regularize_polygon(traced(truth, seed=9))
    assert len(outline.interiors) == 1
    assert len(outline.interiors[0].coords) == 5
    assert iou(outline, truth) >= 0.9


def test_tiny_or_degenerate_shapes_stay_valid():
    pixel = shapely.box(3, 3, 4, 4)
    assert regularize_polygon(pixel).equals(pixel)
    diagonal = shapely.MultiPolygon([shapely.box(0, 0, 1, 1), shapely.box(1, 1, 2, 2)])
    out = regularize_polygon(diagonal)
    assert out.is_valid and out.area == pytest.approx(2)
