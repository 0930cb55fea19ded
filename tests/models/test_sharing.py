from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from glnet_geo.io.grid import boxes_from_windows, patch_windows
from glnet_geo.models.fpn import FeatureMaps
from glnet_geo.models.sharing import LocalMapMerger, box_slices, coverage, crop_resize


def test_box_slices_round_half_to_even_like_numpy():
    # 4 * 0.125 = 0.5 -> 0 and 4 * 0.375 = 1.5 -> 2, as np.round does.
    assert box_slices((0.125, 0.375, 0.5, 0.25), 4, 4) == (slice(0, 2), slice(2, 3))
    rng = np.random.default_rng(0)
    for _ in range(200):
        top, left = rng.uniform(0, 0.6, 2)
        height, width = rng.uniform(0.1, 0.4, 2)
        h, w = rng.integers(1, 130, 2)
        rows, cols = box_slices((top, left, height, width), int(h), int(w))
        assert rows.start == min(int(np.round(h * top)), h - 1)
        assert rows.stop - rows.start == max(1, int(np.round(h * height)))
        assert cols.start == min(int(np.round(w * left)), w - 1)


def test_box_slices_cover_at_least_one_cell():
    rows, cols = box_slices((0.99, 0.0, 0.01, 0.01), 2, 2)
    assert (rows.start, rows.stop - rows.start) == (1, 1)
    assert cols.stop - cols.start == 1


def test_crop_resize_takes_the_box_then_resizes():
    fmap = torch.arange(64.0).reshape(1, 1, 8, 8)
    out = crop_resize(fmap, [(0.25, 0.5, 0.5, 0.5), (0.0, 0.0, 0.25, 0.25)], (4, 4))
    torch.testing.assert_close(out[0:1], fmap[:, :, 2:6, 4:8])  # same size: untouched
    expected = F.interpolate(fmap[:, :, 0:2, 0:2], size=(4, 4), mode="bilinear",
                             align_corners=False)
    torch.testing.assert_close(out[1:2], expected)


@pytest.mark.parametrize("scene, patch, size", [((100, 150), 64, (16, 16)),
                                                ((1200, 1000), 508, (127, 127)),
                                                ((1200, 1000), 508, (8, 16))])
def test_coverage_equals_the_resized_full_resolution_count(scene, patch, size):
    windows = patch_windows(*scene, patch, 50 if patch > 100 else 10)
    template = torch.zeros(1, 1, *scene)
    for w in windows:
        template[:, :, w.row_off:w.row_off + patch, w.col_off:w.col_off + patch] += 1
    expected = F.interpolate(template, size=size, mode="bilinear", align_corners=False)
    boxes = [tuple(b) for b in boxes_from_windows(windows, *scene).tolist()]
    # float32 bilinear resizing of the full map rounds at ~3e-6 of the count
    torch.testing.assert_close(coverage(boxes, scene, size), expected, rtol=1e-5, atol=1e-6)


def _maps(fill) -> FeatureMaps:
    return FeatureMaps.from_tensors([fill(i) for i in range(16)])


def test_merger_places_non_overlapping_patches_side_by_side():
    boxes = [(0.0, 0.0, 1.0, 0.5), (0.0, 0.5, 1.0, 0.5)]
    merger = LocalMapMerger(_maps(lambda i: torch.zeros(1, 2, 4, 8)))
    local = _maps(lambda i: torch.randn(2, 2, 4, 4))
    merger.add(local, boxes)
    merged = merger.average(boxes, (8, 16))
    for got, patches in zip(merged.tensors(), local.tensors(), strict=True):
        torch.testing.assert_close(got, torch.cat([patches[0:1], patches[1:2]], dim=3))


def test_merger_averages_where_patches_overlap():
    boxes = [(0.0, 0.0, 1.0, 1.0), (0.0, 0.0, 1.0, 1.0)]
    merger = LocalMapMerger(_maps(lambda i: torch.zeros(1, 1, 4, 4)))
    merger.add(_maps(lambda i: torch.full((1, 1, 4, 4), 2.0)), boxes[:1])
    merger.add(_maps(lambda i: torch.full((1, 1, 4, 4), 4.0)), boxes[1:])
    for got in merger.average(boxes, (16, 16)).tensors():
        torch.testing.assert_close(got, torch.full((1, 1, 4, 4), 3.0))
