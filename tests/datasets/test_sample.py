import numpy as np
import pytest
import torch

from glnet_geo.checkpoint import Normalization
from glnet_geo.classes import NO_CLASS
from glnet_geo.datasets.sample import SceneViews, random_dihedral, resize_labels
from glnet_geo.io.grid import patch_windows

NORM = Normalization(255.0, [0.5] * 3, [0.25] * 3)


def _scene(size=96, seed=0):
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, (3, size, size), dtype=np.uint8)
    label = rng.integers(0, 4, (size, size), dtype=np.uint8)
    return image, label


def test_views_shapes_and_patches_match_the_grid():
    image, label = _scene()
    sample = SceneViews(64, 32, 8, NORM)(image, label, name="a")
    assert sample.global_image.shape == (3, 64, 64)
    assert sample.global_label.shape == (16, 16)
    windows = patch_windows(96, 96, 32, 8)
    assert sample.windows == windows and sample.boxes.shape == (len(windows), 4)
    patches = sample.patches(slice(0, 2))
    assert patches.shape == (2, 3, 32, 32)
    w = windows[1]
    expected = (image[:, w.row_off:w.row_off + 32, w.col_off:w.col_off + 32] / 255 - 0.5) / 0.25
    np.testing.assert_allclose(patches[1].numpy(), expected, atol=1e-5)
    assert sample.patch_labels(slice(0, 2)).shape == (2, 8, 8)
    assert sum(s.stop - s.start for s in sample.sub_batches(5)) == sample.num_patches


def test_sub_batches_never_end_with_a_single_patch():
    image, label = _scene(96)
    sample = SceneViews(32, 32, 0, NORM)(image, label)   # 9 patches
    assert sample.sub_batches(4) == [slice(0, 4), slice(4, 9)]
    assert sample.sub_batches(3) == [slice(0, 3), slice(3, 6), slice(6, 9)]
    five = sample.with_patches([0, 2, 4, 6, 8])
    assert five.sub_batches(4) == [slice(0, 5)]
    assert five.windows == [sample.windows[i] for i in (0, 2, 4, 6, 8)]
    assert torch.equal(five.boxes, sample.boxes[[0, 2, 4, 6, 8]])
    assert sample.with_patches([4]).sub_batches(4) == [slice(0, 1)]
    assert sample.with_patches([]).sub_batches(4) == []


def test_small_scene_is_padded_with_no_label():
    image, label = _scene(24)
    sample = SceneViews(32, 32, 8, NORM)(image, label)
    assert sample.scene_shape == (32, 32) and sample.num_patches == 1
    assert (sample.label[24:] == NO_CLASS).all() and (sample.label[:, 24:] == NO_CLASS).all()


def test_invalid_pixels_get_no_label():
    image, label = _scene(64)
    valid = np.ones((64, 64), dtype=bool)
    valid[:10] = False
    sample = SceneViews(32, 32, 0, NORM)(image, label, valid)
    assert (sample.label[:10] == NO_CLASS).all() and (sample.image[:, :10] == 0).all()


def test_resize_labels_keeps_values():
    labels = torch.tensor([[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, NO_CLASS, NO_CLASS],
                           [2, 2, NO_CLASS, NO_CLASS]])
    assert resize_labels(labels, 2).tolist() == [[0, 1], [2, NO_CLASS]]


def test_augmentation_moves_image_and_label_together():
    torch.manual_seed(0)
    image = torch.arange(2 * 5 * 7, dtype=torch.float32).reshape(2, 5, 7)
    label = image[0].long()  # the label is a copy of band 0
    seen = set()
    for _ in range(200):
        x, y = random_dihedral(image, label)
        assert torch.equal(x[0].long(), y)
        seen.add((tuple(x.shape), tuple(x[0].flatten().tolist())))
    assert len(seen) == 8  # all eight symmetries occur


@pytest.mark.parametrize("augment", [False, True])
def test_views_are_consistent_after_augmentation(augment):
    # a label that equals the image's first band stays equal in every view
    torch.manual_seed(1)
    rng = np.random.default_rng(0)
    label = rng.integers(0, 3, (64, 64), dtype=np.uint8)
    image = np.stack([label * 100] * 3)
    sample = SceneViews(32, 32, 8, Normalization(1.0, [0.0] * 3, [100.0] * 3),
                        augment=augment)(image, label)
    assert torch.equal(sample.image[0].round().long(), sample.label.long())
    patch_band = sample.patches()[:, 0].round().long()
    assert torch.equal(resize_labels(patch_band, 8), sample.patch_labels())
    assert torch.equal(resize_labels(sample.label, 8), sample.global_label.long())
