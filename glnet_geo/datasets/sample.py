"""One training scene and the views GLNet learns from.

A dataset reads a scene at full resolution (raw image and class labels);
:class:`SceneViews` augments it and cuts the views GLNet takes, following the
official training code:

- the **global view**: the whole scene resized to ``global_size`` (bilinear,
  antialiased like PIL's resize and GDAL's decimated read that prediction
  uses) and its label resized to a quarter of that (nearest), the size of G's
  logits;
- the **patches**: full-resolution crops on :func:`glnet_geo.io.grid.patch_windows`,
  their boxes (:func:`~glnet_geo.io.grid.boxes_from_windows`) and their labels
  at a quarter of the patch size (nearest), the size of L's logits.

Flips and 90-degree rotations are applied to the full scene before any view is
cut, so both views and all labels always agree.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from itertools import pairwise

import numpy as np
import torch
import torch.nn.functional as F
from rasterio.windows import Window
from torch import Tensor

from glnet_geo.classes import NO_CLASS
from glnet_geo.io.grid import boxes_from_windows, patch_windows
from glnet_geo.io.reader import Normalization, normalize

#: Logits of both branches come at this fraction of their input's side.
LOGIT_STRIDE = 4


@dataclass
class SceneSample:
    """A scene ready for GLNet: the full-resolution scene and its views.

    Attributes:
        image: ``(C, H, W)`` normalised full-resolution scene (padded to at
            least one patch).
        label: ``(H, W)`` uint8 class ids, :data:`~glnet_geo.classes.NO_CLASS`
            where there is no label (padding, nodata).
        global_image: ``(C, Hg, Wg)`` the scene resized for G.
        global_label: ``(Hg/4, Wg/4)`` labels at the size of G's logits.
        windows: Patch windows on the scene, row by row.
        boxes: ``(N, 4)`` boxes of the patches (fractions of the scene).
        name: Where the scene comes from (file name or map bounds).
        patch_size: Side of the patches in pixels.
        min_overlap: Minimum overlap of neighbouring patches on the grid.

    """

    image: Tensor
    label: Tensor
    global_image: Tensor
    global_label: Tensor
    windows: list[Window]
    boxes: Tensor
    name: str = ""
    patch_size: int = 0
    min_overlap: int = 0

    @property
    def scene_shape(self) -> tuple[int, int]:
        """``(H, W)`` of the (padded) scene in pixels."""
        return int(self.image.shape[-2]), int(self.image.shape[-1])

    @property
    def num_patches(self) -> int:
        """Number of patches N."""
        return len(self.windows)

    def patches(self, index: slice = slice(None)) -> Tensor:
        """``(n, C, P, P)`` full-resolution patches ``index`` of the scene."""
        return self.crops(self.windows[index])

    def crops(self, windows: Sequence[Window]) -> Tensor:
        """``(n, C, h, w)`` full-resolution crops of the scene at ``windows``."""
        return torch.stack([self.image[:, _rows(w), _cols(w)] for w in windows])

    def patch_labels(self, index: slice = slice(None)) -> Tensor:
        """``(n, P/4, P/4)`` long labels of patches ``index`` at the size of L's logits."""
        crops = torch.stack([self.label[_rows(w), _cols(w)] for w in self.windows[index]])
        return resize_labels(crops, self.patch_size // LOGIT_STRIDE)

    def with_patches(self, index: Sequence[int]) -> SceneSample:
        """Return the same scene with only patches ``index`` (their windows and boxes)."""
        return replace(self, windows=[self.windows[i] for i in index],
                       boxes=self.boxes[list(index)])

    def sub_batches(self, size: int) -> list[slice]:
        """Consecutive slices of at most ``size`` patches covering all of them.

        A last slice of a single patch joins the one before it (``size + 1``
        patches): batch norm cannot train on one patch whose deepest map is
        1 x 1 (patches under 64 px).
        """
        bounds = [*range(0, self.num_patches, size), self.num_patches]
        if len(bounds) > 2 and bounds[-1] - bounds[-2] == 1:
            del bounds[-2]
        return [slice(start, stop) for start, stop in pairwise(bounds)]

    def to(self, device: torch.device | str) -> SceneSample:
        """Move the sample's tensors to ``device`` (Lightning calls this)."""
        return replace(self, image=self.image.to(device), label=self.label.to(device),
                       global_image=self.global_image.to(device),
                       global_label=self.global_label.to(device))


def _rows(window: Window) -> slice:
    return slice(int(window.row_off), int(window.row_off + window.height))


def _cols(window: Window) -> slice:
    return slice(int(window.col_off), int(window.col_off + window.width))


def resize_labels(labels: Tensor, size: int | Sequence[int]) -> Tensor:
    """Nearest (pixel-centre) resize of ``(..., H, W)`` labels; returns long."""
    size = (size, size) if isinstance(size, int) else tuple(size)
    lead = labels.shape[:-2]
    flat = labels.reshape(-1, 1, *labels.shape[-2:]).float()
    out = F.interpolate(flat, size=size, mode="nearest-exact")
    return out.reshape(*lead, *size).long()


def random_dihedral(image: Tensor, label: Tensor,
                    generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """Apply the same random flip and 90-degree rotation to an image and its label.

    One of the 8 symmetries of the square, each with probability 1/8.

    Args:
        image: ``(C, H, W)``.
        label: ``(H, W)``.
        generator: Random generator (default: torch's global one).

    """
    flip, turns = torch.randint(0, 2, (1,), generator=generator).item(), \
        torch.randint(0, 4, (1,), generator=generator).item()
    if flip:
        image, label = image.flip(-1), label.flip(-1)
    if turns:
        image, label = image.rot90(turns, (-2, -1)), label.rot90(turns, (-2, -1))
    return image.contiguous(), label.contiguous()


@dataclass(frozen=True)
class SceneViews:
    """Turn a full-resolution scene into a :class:`SceneSample`.

    Attributes:
        global_size: Side of the global view in pixels.
        patch_size: Side of the patches in pixels.
        min_overlap: Minimum overlap of neighbouring patches.
        normalization: How raw values become network inputs.
        augment: Apply a random flip and 90-degree rotation to every scene.

    """

    global_size: int
    patch_size: int
    min_overlap: int
    normalization: Normalization
    augment: bool = False

    def __call__(self, image: np.ndarray | Tensor, label: np.ndarray | Tensor,
                 valid: np.ndarray | None = None, name: str = "") -> SceneSample:
        """Build the views of one scene.

        Args:
            image: ``(C, H, W)`` raw pixel values.
            label: ``(H, W)`` class ids (``NO_CLASS`` where unlabelled).
            valid: ``(H, W)`` boolean validity of the image (nodata is False);
                invalid pixels get ``NO_CLASS``.
            name: Where the scene comes from.

        """
        image = np.asarray(image)
        label = np.asarray(label)
        if valid is None:
            valid = np.ones(label.shape, dtype=bool)
        x = torch.from_numpy(normalize(image, valid, self.normalization))
        y = torch.from_numpy(np.where(valid, label, NO_CLASS).astype(np.uint8))
        if self.augment:
            x, y = random_dihedral(x, y)
        x, y = _pad_to(x, y, self.patch_size)
        height, width = y.shape
        windows = patch_windows(height, width, self.patch_size, self.min_overlap)
        size = (self.global_size, self.global_size)
        global_image = F.interpolate(x[None], size=size, mode="bilinear", align_corners=False,
                                     antialias=True)[0]
        global_label = resize_labels(y, self.global_size // LOGIT_STRIDE).to(torch.uint8)
        return SceneSample(image=x, label=y, global_image=global_image,
                           global_label=global_label, windows=windows,
                           boxes=boxes_from_windows(windows, height, width), name=name,
                           patch_size=self.patch_size, min_overlap=self.min_overlap)


def _pad_to(image: Tensor, label: Tensor, side: int) -> tuple[Tensor, Tensor]:
    """Pad a scene at the bottom/right to at least ``side`` pixels (label: NO_CLASS)."""
    height, width = label.shape
    pad_h, pad_w = max(0, side - height), max(0, side - width)
    if pad_h or pad_w:
        image = F.pad(image, (0, pad_w, 0, pad_h))
        label = F.pad(label, (0, pad_w, 0, pad_h), value=NO_CLASS)
    return image, label


def collate_scenes(batch: list[SceneSample]) -> list[SceneSample]:
    """Keep a batch as a list of scenes (their patch counts may differ)."""
    return list(batch)
