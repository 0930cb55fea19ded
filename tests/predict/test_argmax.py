"""The argmax of upsampled logits, interpolated only where the source cells disagree."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from rasterio.windows import Window

from glnet_geo.predict.argmax import MAX_DISAGREEING, class_ids, upsampled_class_ids


def reference(logits: torch.Tensor, size: tuple[int, int], crop: Window) -> np.ndarray:
    scores = F.interpolate(logits[None], size=size, mode="bilinear", align_corners=False)[0]
    return scores[(slice(None), *crop.toslices())].max(0).indices.numpy().astype(np.uint8)


def smooth_logits(classes: int, shape: tuple[int, int], blobs: int, seed: int) -> torch.Tensor:
    """Logits of regions ``shape / blobs`` cells wide, like a trained G's."""
    noise = torch.randn(1, classes, blobs, blobs, generator=torch.Generator().manual_seed(seed))
    return 3 * F.interpolate(noise, size=shape, mode="bilinear", align_corners=False)[0]


def disagreeing_share(logits: torch.Tensor) -> float:
    low = logits.max(0).indices.numpy()
    edge = np.pad(low, ((0, 1), (0, 1)), mode="edge")
    agree = (low == edge[1:, :-1]) & (low == edge[:-1, 1:]) & (low == edge[1:, 1:])
    return 1 - agree.mean()


@pytest.mark.parametrize(("shape", "size", "crop"), [
    ((64, 64), (928, 928), Window(128, 128, 672, 672)),   # a scene's core
    ((64, 64), (928, 928), Window(0, 0, 928, 928)),       # the whole scene, edges included
    ((60, 61), (900, 917), Window(5, 0, 912, 900)),       # not square, no whole ratio
    ((127, 127), (2448, 2448), Window(2200, 7, 248, 9)),  # the official grid's, at a corner
    ((48, 40), (30, 25), Window(0, 0, 25, 30)),           # downsampling
])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_same_classes_as_upsampling_every_pixel(shape, size, crop, seed):
    logits = smooth_logits(7, shape, 6, seed)
    assert disagreeing_share(logits) <= MAX_DISAGREEING  # the path that skips pixels
    classes = upsampled_class_ids(logits, size, crop)
    assert classes.dtype == np.uint8
    assert classes.shape == (crop.height, crop.width)
    np.testing.assert_array_equal(classes, reference(logits, size, crop))


def test_noisy_logits_are_upsampled_whole():
    logits = torch.randn(5, 40, 40, generator=torch.Generator().manual_seed(3))
    assert disagreeing_share(logits) > MAX_DISAGREEING
    crop = Window(10, 20, 300, 250)
    np.testing.assert_array_equal(upsampled_class_ids(logits, (500, 400), crop),
                                  reference(logits, (500, 400), crop))


def test_ties_go_to_the_first_class():
    logits = torch.zeros(4, 8, 8)
    logits[2:, :, 4:] = 1.0  # classes 2 and 3 tie on the right half
    classes = upsampled_class_ids(logits, (64, 64), Window(0, 0, 64, 64))
    np.testing.assert_array_equal(classes, reference(logits, (64, 64), Window(0, 0, 64, 64)))
    assert set(np.unique(classes)) == {0, 2}


def test_channels_last_logits():
    logits = smooth_logits(7, (32, 32), 4, 4)
    strided = logits[None].contiguous(memory_format=torch.channels_last)[0]
    crop = Window(0, 0, 400, 400)
    np.testing.assert_array_equal(upsampled_class_ids(strided, (400, 400), crop),
                                  upsampled_class_ids(logits, (400, 400), crop))


def test_class_ids_is_the_first_argmax_in_row_chunks():
    scores = torch.randn(6, 300, 70, generator=torch.Generator().manual_seed(5))
    scores[:, :10] = 0  # ties
    np.testing.assert_array_equal(class_ids(scores, rows=64), scores.argmax(0).numpy())
