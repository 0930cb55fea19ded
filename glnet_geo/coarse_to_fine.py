"""Coarse-to-fine GLNet: the local branch refines only where G finds foreground.

For sparse targets (buildings cover a few percent of most scenes) the paper's
coarse-to-fine variant (section 3.3) lets the global branch G segment the
scene coarsely, relaxes the bounding box of G's foreground until foreground
and background inside are about 1:1, and sends only that region through the
local branch L; outside it the scene is background.

glnet-geo finds one region per connected group of foreground instead of one
box for the whole scene (:func:`foreground_regions`): each group's box is
relaxed (:func:`relax_box`) and boxes that overlap are merged
(:func:`merge_overlapping`), so villages at both ends of a scene do not make L
refine the farmland between them. The patches of the scene's grid that touch
a region are the ones L runs on (:func:`patches_touching`).

The same regions, computed on the labels, choose the patches the local
branch trains on with ``glnet-geo train --coarse-to-fine``, so it sees
class-balanced crops.

Patch skipping (``glnet-geo predict --skip-threshold``) is the same idea for
any checkpoint: the local branch skips the patches where G is confident of a
single class (:func:`confident_patches`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import rasterio.features
import shapely
import torch
from rasterio.windows import Window, intersect, union

#: Foreground to background ratio the relaxed boxes aim at (the paper's 1:1).
TARGET_RATIO = 1.0

#: Class id of the background: coarse-to-fine expects binary targets (or
#: classes where every id but this one is foreground).
BACKGROUND = 0


class _Counter:
    """Foreground pixels in any window in constant time (a summed-area table)."""

    def __init__(self, foreground: np.ndarray) -> None:
        self.table = np.zeros((foreground.shape[0] + 1, foreground.shape[1] + 1), np.int64)
        self.table[1:, 1:] = foreground.cumsum(0, dtype=np.int64).cumsum(1)

    def count(self, top: int, left: int, bottom: int, right: int) -> int:
        t = self.table
        return int(t[bottom, right] - t[top, right] - t[bottom, left] + t[top, left])


def _ratio(foreground: int, area: int) -> float:
    background = area - foreground
    return np.inf if background == 0 else foreground / background


def relax_box(foreground: np.ndarray, box: Window, target_ratio: float = TARGET_RATIO,
              _counter: _Counter | None = None) -> Window:
    """Grow ``box`` until foreground and background inside are about ``target_ratio``.

    The box grows by one row or column at a time, turning round its sides
    (top, left, bottom, right) and skipping the sides at the scene's edge, and
    stops at the size whose ratio is closest to ``target_ratio`` (in log
    terms). A box that already holds more background than that is returned
    unchanged (growing only adds background), and growth stops at the whole
    scene.

    Args:
        foreground: ``(H, W)`` boolean foreground of the scene.
        box: A window on the scene (usually a group's bounding box).
        target_ratio: Foreground over background to aim at.

    Returns:
        The relaxed window, inside the scene.

    """
    height, width = foreground.shape
    counter = _counter or _Counter(foreground)
    top, left = int(box.row_off), int(box.col_off)
    bottom, right = top + int(box.height), left + int(box.width)
    best = (top, left, bottom, right)
    best_error = abs(np.log(_ratio(counter.count(*best), _area(*best)) / target_ratio))
    side = 0
    while _ratio(counter.count(top, left, bottom, right),
                 _area(top, left, bottom, right)) > target_ratio:
        growable = [top > 0, left > 0, bottom < height, right < width]
        if not any(growable):
            break
        while not growable[side % 4]:
            side += 1
        top, left, bottom, right = (top - (side % 4 == 0), left - (side % 4 == 1),
                                    bottom + (side % 4 == 2), right + (side % 4 == 3))
        side += 1
        error = abs(np.log(_ratio(counter.count(top, left, bottom, right),
                                  _area(top, left, bottom, right)) / target_ratio))
        if error < best_error:
            best, best_error = (top, left, bottom, right), error
    top, left, bottom, right = best
    return Window(left, top, right - left, bottom - top)


def _area(top: int, left: int, bottom: int, right: int) -> int:
    return (bottom - top) * (right - left)


def merge_overlapping(windows: Sequence[Window]) -> list[Window]:
    """Replace windows that overlap by their union (bounding box) until none overlap.

    Windows that only touch along an edge stay apart.
    """
    merged = list(windows)
    changed = True
    while changed:
        changed = False
        out: list[Window] = []
        for window in merged:
            for i, other in enumerate(out):
                if intersect(window, other):
                    out[i] = union(window, other)
                    changed = True
                    break
            else:
                out.append(window)
        merged = out
    return merged


def group_boxes(foreground: np.ndarray) -> list[Window]:
    """Return the bounding box of each 8-connected group of foreground pixels."""
    mask = np.ascontiguousarray(foreground, dtype=np.uint8)
    boxes = []
    for geometry, _ in rasterio.features.shapes(mask, mask=mask.astype(bool), connectivity=8):
        left, top, right, bottom = shapely.geometry.shape(geometry).bounds
        boxes.append(Window(int(left), int(top), int(right - left), int(bottom - top)))
    return boxes


def foreground_regions(foreground: np.ndarray, target_ratio: float = TARGET_RATIO
                       ) -> list[Window]:
    """Return the regions the local branch refines: relaxed, merged group boxes.

    Args:
        foreground: ``(H, W)`` boolean foreground of a scene (G's prediction
            at the scene's size, or the labels when training).
        target_ratio: Foreground over background each box is relaxed to.

    Returns:
        Non-overlapping windows on the scene, none if there is no foreground.

    """
    foreground = np.asarray(foreground, dtype=bool)
    counter = _Counter(foreground)
    boxes = [relax_box(foreground, box, target_ratio, counter) for box in group_boxes(foreground)]
    return merge_overlapping(boxes)


def patches_touching(windows: Sequence[Window], regions: Sequence[Window]) -> list[int]:
    """Return the indexes of the patch ``windows`` that overlap any of ``regions``."""
    return [i for i, window in enumerate(windows)
            if any(intersect(window, region) for region in regions)]


def refined_patches(foreground: np.ndarray, windows: Sequence[Window]) -> list[int]:
    """Return the patches the local branch refines for a scene's foreground.

    Args:
        foreground: ``(H, W)`` boolean foreground of the scene (from G's
            prediction, or from the labels when training).
        windows: The scene's patch windows.

    Returns:
        Indexes into ``windows`` of the patches that touch a foreground region.

    """
    return patches_touching(windows, foreground_regions(foreground))


def confident_patches(probabilities: torch.Tensor, windows: Sequence[Window],
                      threshold: float) -> list[int]:
    """Return the patches where G is sure of one class: the ones the local branch may skip.

    Patch skipping works for any checkpoint: where G's most likely class is
    the same everywhere in a patch and its probability is above
    ``threshold`` at every pixel, the local branch is not run and G's
    prediction stands.

    Args:
        probabilities: ``(K, H, W)`` G's class probabilities at the scene's size.
        windows: The scene's patch windows.
        threshold: The probability to exceed; 1.0 never skips.

    Returns:
        Indexes into ``windows``.

    """
    top, classes = probabilities.max(0)
    confident = []
    for i, window in enumerate(windows):
        rows, cols = window.toslices()
        patch = classes[rows, cols]
        if bool((top[rows, cols] > threshold).all()) and \
                bool((patch == patch.flatten()[0]).all()):
            confident.append(i)
    return confident
