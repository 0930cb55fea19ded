from __future__ import annotations

import numpy as np
import pytest
import rasterio.features
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

import glnet_geo.vectorize.dissolve as module
from glnet_geo.vectorize.dissolve import dissolve


def regions(data: np.ndarray) -> list:
    """The 4-connected regions of a class array as polygons in pixel coordinates."""
    return [shapely.geometry.shape(g) for g, _ in rasterio.features.shapes(data)]


def cut(region, block: int, width: int, height: int) -> list:
    """The pieces block-wise polygonizing makes of a region: its parts in each block."""
    pieces = []
    for row in range(0, height, block):
        for col in range(0, width, block):
            part = region.intersection(shapely.box(col, row, col + block, row + block))
            pieces += [p for p in shapely.get_parts(part) if p.geom_type == "Polygon"]
    return pieces


@pytest.fixture
def no_overlay(monkeypatch):
    def refuse(pieces):
        raise AssertionError("fell back to a polygon overlay")

    monkeypatch.setattr(module, "_union", refuse)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), block=st.integers(2, 9), size=st.integers(6, 28),
       cell=st.integers(1, 4))
def test_same_polygon_as_a_union_of_the_pieces(seed, block, size, cell):
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 3, (size // cell + 1, size // cell + 1))
    data = np.kron(coarse, np.ones((cell, cell), int))[:size, :size].astype(np.uint8)
    data[rng.random(data.shape) < 0.1] = 3
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(module, "_union", lambda pieces: pytest.fail("overlay fallback"))
        for region in regions(data):
            pieces = cut(region, block, size, size)
            if len(pieces) < 2:
                continue
            merged = dissolve(pieces, block_size=block, width=size, height=size)
            assert merged.is_valid, shapely.is_valid_reason(merged)
            assert merged.geom_type == "Polygon"
            assert merged.equals(region)
            assert shapely.get_num_coordinates(merged) == shapely.get_num_coordinates(
                shapely.simplify(region, 0.0))  # no vertex left where seams were


def test_region_touching_itself_at_a_seam_corner(no_overlay):
    # A ring of pixels closed only by a diagonal touch at the corner of four blocks:
    # with 4-connectivity the enclosed pixel is outside, in a hole touching the shell.
    data = np.zeros((8, 8), np.uint8)
    data[1, 1:5] = data[1:5, 1] = 1
    data[4, 1:4] = data[2:4, 4] = 1  # (4, 4) is missing: (3, 4) and (4, 3) touch (4, 4)
    data[3, 3] = 0
    region = max(regions(data), key=lambda r: r.area if r.area < 40 else 0)
    merged = dissolve(cut(region, 4, 8, 8), block_size=4, width=8, height=8)
    assert merged.is_valid
    assert merged.equals(region)


def test_holes_closed_by_the_seams_and_holes_of_pieces(no_overlay):
    data = np.ones((12, 12), np.uint8)
    data[5:7, 5:7] = 0  # a hole across the seams at 6
    data[1, 1] = 0  # a hole inside one block
    region = next(r for r in regions(data) if r.area > 100)
    merged = dissolve(cut(region, 6, 12, 12), block_size=6, width=12, height=12)
    assert len(merged.interiors) == 2
    assert merged.equals(region)


def test_not_pixel_aligned_falls_back_to_a_union():
    pieces = [shapely.box(0, 0, 1.5, 1), shapely.box(1.5, 0, 3, 1)]
    merged = dissolve(pieces, block_size=2, width=4, height=4)
    assert merged.equals(shapely.box(0, 0, 3, 1))
