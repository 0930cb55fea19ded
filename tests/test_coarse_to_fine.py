"""Foreground regions, relaxed boxes and the patches the local branch refines or skips."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from rasterio.windows import Window

from glnet_geo.coarse_to_fine import (
    confident_patches,
    foreground_regions,
    group_boxes,
    merge_overlapping,
    patches_touching,
    refined_patches,
    relax_box,
)
from glnet_geo.io.grid import patch_windows


def ratio(foreground: np.ndarray, window: Window) -> float:
    inside = foreground[window.toslices()]
    return inside.sum() / (inside.size - inside.sum())


def disc(shape: tuple[int, int], centre: tuple[int, int], radius: float) -> np.ndarray:
    rows, cols = np.ogrid[:shape[0], :shape[1]]
    return (rows - centre[0]) ** 2 + (cols - centre[1]) ** 2 <= radius ** 2


@pytest.mark.parametrize("top,left,height,width", [
    (90, 90, 10, 10),     # a square in the middle
    (0, 0, 12, 20),       # in a corner: grows into the scene only
    (150, 40, 3, 5),      # tiny
    (50, 60, 40, 25),     # large and oblong
])
def test_relaxed_box_reaches_one_to_one(top, left, height, width):
    foreground = np.zeros((200, 200), bool)
    foreground[top:top + height, left:left + width] = True
    box = Window(left, top, width, height)
    relaxed = relax_box(foreground, box)
    assert 0.8 <= ratio(foreground, relaxed) <= 1.25
    assert relaxed.row_off <= top and relaxed.col_off <= left
    assert relaxed.row_off + relaxed.height >= top + height
    assert relaxed.col_off + relaxed.width >= left + width
    assert relaxed.row_off >= 0 and relaxed.col_off >= 0
    assert relaxed.row_off + relaxed.height <= 200 and relaxed.col_off + relaxed.width <= 200


@settings(max_examples=60, deadline=None)
@given(st.integers(4, 40), st.floats(0.5, 2.0), st.integers(0, 199), st.integers(0, 199))
def test_compact_foreground_relaxes_into_the_band(side, aspect, top, left):
    # Compact groups of 16 px or more: each row or column added changes the
    # ratio by less than the band's width, so growth cannot jump over it.
    height, width = side, max(4, round(side * aspect))
    top, left = min(top, 200 - height), min(left, 200 - width)  # the whole group in the scene
    foreground = np.zeros((200, 200), bool)
    foreground[top:top + height, left:left + width] = True
    rows, cols = np.nonzero(foreground)
    box = Window(cols.min(), rows.min(), cols.max() + 1 - cols.min(),
                 rows.max() + 1 - rows.min())
    relaxed = relax_box(foreground, box)
    assert 0.8 <= ratio(foreground, relaxed) <= 1.25


def test_box_with_more_background_than_foreground_is_kept():
    foreground = np.eye(50, dtype=bool)  # a diagonal: 50 of 2500 pixels
    box = Window(0, 0, 50, 50)
    assert relax_box(np.pad(foreground, 20), Window(20, 20, 50, 50)) == Window(20, 20, 50, 50)
    assert relax_box(foreground, box) == box


def test_growth_stops_at_the_whole_scene():
    foreground = np.ones((30, 40), bool)
    foreground[0, 0] = False
    assert relax_box(foreground, Window(1, 1, 39, 29)) == Window(0, 0, 40, 30)


def test_group_boxes_are_the_8_connected_bounding_boxes():
    foreground = np.zeros((20, 20), bool)
    foreground[2:4, 2:5] = True
    foreground[4, 5] = True            # touches the first group diagonally
    foreground[10:15, 12:14] = True
    boxes = sorted(group_boxes(foreground), key=lambda w: w.row_off)
    assert boxes == [Window(2, 2, 4, 3), Window(12, 10, 2, 5)]


def test_overlapping_windows_merge_in_chains_but_touching_ones_do_not():
    a, b, c = Window(0, 0, 10, 10), Window(8, 0, 10, 10), Window(16, 5, 10, 10)
    d = Window(0, 12, 10, 10)          # overlaps only the union of a, b and c
    e = Window(26, 0, 5, 5)            # touches c's right edge only
    merged = merge_overlapping([a, d, c, b, e])
    assert sorted(merged, key=lambda w: w.col_off) == [Window(0, 0, 26, 22), e]


def test_distant_groups_give_separate_regions_and_close_ones_merge():
    shape = (400, 400)
    villages = disc(shape, (60, 60), 15) | disc(shape, (340, 330), 15)
    regions = foreground_regions(villages)
    assert len(regions) == 2
    for region in regions:
        assert 0.8 <= ratio(villages, region) <= 1.25
    # Two 10 px roofs 2 px apart: each relaxed box overlaps the other -> one region.
    pair = np.zeros(shape, bool)
    pair[100:110, 100:110] = pair[100:110, 112:122] = True
    (region,) = foreground_regions(pair)
    assert region.col_off <= 100 and region.col_off + region.width >= 122


def test_no_foreground_no_regions():
    assert foreground_regions(np.zeros((50, 50), bool)) == []


def test_refined_patches_are_those_touching_the_regions():
    foreground = np.zeros((128, 128), bool)
    foreground[8:16, 8:16] = True
    windows = patch_windows(128, 128, 32, 0)
    refined = refined_patches(foreground, windows)
    assert [windows[i] for i in refined] == [Window(0, 0, 32, 32)]
    assert patches_touching(windows, foreground_regions(foreground)) == refined
    assert refined_patches(np.zeros((128, 128), bool), windows) == []


def test_confident_patches():
    probabilities = torch.full((2, 64, 64), 0.5)
    probabilities[0, :32, :32], probabilities[1, :32, :32] = 0.99, 0.01  # sure of class 0
    probabilities[0, :32, 32:], probabilities[1, :32, 32:] = 0.01, 0.99  # sure of class 1
    probabilities[0, 32:, :32], probabilities[1, 32:, :32] = 0.99, 0.01  # ... but one pixel
    probabilities[0, 40, 10], probabilities[1, 40, 10] = 0.9, 0.1
    probabilities[0, 32:, 32:48], probabilities[1, 32:, 48:] = 0.99, 0.99  # two sure classes
    probabilities[1, 32:, 32:48], probabilities[0, 32:, 48:] = 0.01, 0.01
    windows = patch_windows(64, 64, 32, 0)
    assert confident_patches(probabilities, windows, 0.95) == [0, 1]
    assert confident_patches(probabilities, windows, 0.85) == [0, 1, 2]
    assert confident_patches(probabilities, windows, 1.0) == []
