from __future__ import annotations

from itertools import pairwise

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from rasterio.windows import Window

from glnet_geo.errors import InputError
from glnet_geo.io.grid import boxes_from_windows, patch_offsets, patch_windows


@st.composite
def axes(draw):
    patch = draw(st.integers(2, 600))
    min_overlap = draw(st.integers(0, patch - 1))
    side = draw(st.integers(1, 6000))
    return side, patch, min_overlap


@settings(max_examples=300, deadline=None)
@given(axes())
def test_offsets_cover_the_side_with_the_minimum_overlap(axis):
    side, patch, min_overlap = axis
    offsets = patch_offsets(side, patch, min_overlap)
    assert offsets[0] == 0
    if side <= patch:
        assert offsets == [0]
        return
    assert offsets[-1] == side - patch  # snapped to the edge
    for a, b in pairwise(offsets):
        assert a < b
        assert a + patch - b >= min_overlap  # neighbours overlap, so every pixel is covered
    # the fewest patches: one patch less would not reach the overlap evenly spread
    n = len(offsets)
    if n > 2:
        assert n * patch >= side
        assert (n - 1) * patch < side or patch - (side - patch) / (n - 2) < min_overlap


def test_offsets_of_the_official_rule():
    assert patch_offsets(2448, 508) == [0, 388, 776, 1164, 1552, 1940]
    assert patch_offsets(5000, 508) == [0, 449, 898, 1348, 1797, 2246, 2695, 3144, 3594, 4043,
                                        4492]
    # step 254.5 is rounded half to even, as np.round does: 254, not 255
    assert patch_offsets(1017, 508) == [0, 254, 509]


def test_windows_are_row_major_and_boxes_are_fractions():
    windows = patch_windows(1200, 1000, 508)
    tops = patch_offsets(1200, 508)
    lefts = patch_offsets(1000, 508)
    assert len(windows) == len(tops) * len(lefts)
    assert windows[1] == Window(col_off=lefts[1], row_off=0, width=508, height=508)
    assert windows[len(lefts)].row_off == tops[1]
    boxes = boxes_from_windows(windows, 1200, 1000)
    assert boxes.dtype == torch.float64 and boxes.shape == (len(windows), 4)
    assert boxes[-1].tolist() == [(1200 - 508) / 1200, (1000 - 508) / 1000, 508 / 1200,
                                  508 / 1000]


def test_a_scene_smaller_than_a_patch_gives_one_padded_window():
    assert patch_windows(300, 700, 508) == [
        Window(col_off=0, row_off=0, width=508, height=508),
        Window(col_off=192, row_off=0, width=508, height=508)]
    with pytest.raises(InputError, match="pad the scene"):
        boxes_from_windows(patch_windows(300, 300, 508), 300, 300)
    assert boxes_from_windows(patch_windows(300, 300, 508), 508, 508).tolist() == [
        [0.0, 0.0, 1.0, 1.0]]


@pytest.mark.parametrize("args, match", [((100, 50, 50), "min_overlap=50"),
                                         ((100, 50, -1), "min_overlap=-1"),
                                         ((0, 50, 10), "expected positive sizes")])
def test_bad_grid_arguments(args, match):
    with pytest.raises(InputError, match=match):
        patch_offsets(*args)
