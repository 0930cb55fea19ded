"""Deep feature-map sharing between GLNet's branches.

G->L: each global map is cropped at a patch's box and resized to the size of
the local map of the same layer (:func:`crop_maps`).

L->G: the local maps of every patch are resized to the patch's box in global
map coordinates, summed into global-sized maps and divided by how many
patches cover each cell (:class:`LocalMapMerger`, :func:`coverage`).

Boxes are ``(top, left, height, width)`` fractions of the scene. A box covers
the rows ``round(H * top) : round(H * top) + round(H * height)`` of a map with
``H`` rows (and likewise for columns), rounded half to even as the official
code does with ``np.round``; a slice reaching past the map's edge is cut
there, and a box always covers at least one cell.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from glnet_geo.models.fpn import FeatureMaps, resize

#: A box: top, left, height, width as fractions of the scene.
Box = tuple[float, float, float, float]


def box_slices(box: Box, height: int, width: int) -> tuple[slice, slice]:
    """Return the rows and columns of a ``height`` x ``width`` map that ``box`` covers.

    Returns:
        Row and column slices; they may reach past the map's edge (slicing
        then stops at the edge).

    """
    top, left, box_height, box_width = box
    rows = max(1, round(height * box_height))
    cols = max(1, round(width * box_width))
    row0 = min(round(height * top), height - 1)
    col0 = min(round(width * left), width - 1)
    return slice(row0, row0 + rows), slice(col0, col0 + cols)


def crop_resize(fmap: Tensor, boxes: Sequence[Box], size: Sequence[int]) -> Tensor:
    """Crop a one-scene map at each box and resize each crop to ``size``.

    Args:
        fmap: ``(1, C, H, W)`` map of the whole scene.
        boxes: ``n`` boxes.
        size: ``(h, w)`` of the result.

    Returns:
        ``(n, C, h, w)``.

    """
    height, width = fmap.shape[-2:]
    crops = []
    for box in boxes:
        rows, cols = box_slices(box, height, width)
        crops.append(resize(fmap[:, :, rows, cols], size))
    return torch.cat(crops)


def crop_maps(maps: FeatureMaps, boxes: Sequence[Box], c_sizes: Sequence[Sequence[int]]
              ) -> FeatureMaps:
    """Crop every global map at each box, resized to the local maps' sizes (G->L).

    Args:
        maps: G's maps for one scene (batch of 1).
        boxes: The boxes of ``n`` patches.
        c_sizes: ``(h, w)`` of the local c2..c5; the local p5..p2 have the
            sizes of c5..c2.

    Returns:
        Maps with a batch of ``n``.

    """
    c_sizes = [tuple(s) for s in c_sizes]
    p_sizes = c_sizes[::-1]
    return FeatureMaps(
        c=[crop_resize(m, boxes, s) for m, s in zip(maps.c, c_sizes, strict=True)],
        ps0=[crop_resize(m, boxes, s) for m, s in zip(maps.ps0, p_sizes, strict=True)],
        ps1=[crop_resize(m, boxes, s) for m, s in zip(maps.ps1, p_sizes, strict=True)],
        ps2=[crop_resize(m, boxes, s) for m, s in zip(maps.ps2, p_sizes, strict=True)],
    )


def coverage(boxes: Sequence[Box], scene_shape: Sequence[int], size: Sequence[int]) -> Tensor:
    """How many patches cover each scene pixel, bilinearly resized to ``size``.

    The count is taken at full scene resolution (each box rounded to whole
    scene pixels) and resized bilinearly, as the official code does with its
    "template". Each box's indicator is separable (rows times columns) and
    bilinear resizing acts on rows and columns separately, so the result is
    computed as ``rows.T @ cols`` from 1-D resizes, without holding a
    full-resolution map.

    Args:
        boxes: All boxes of the scene.
        scene_shape: ``(H, W)`` of the scene in pixels.
        size: ``(h, w)`` of the result.

    Returns:
        ``(1, 1, h, w)``.

    """
    rows = _resized_indicators([(b[0], b[2]) for b in boxes], scene_shape[0], size[0])
    cols = _resized_indicators([(b[1], b[3]) for b in boxes], scene_shape[1], size[1])
    return (rows.T @ cols).float()[None, None]


def _resized_indicators(spans: Sequence[tuple[float, float]], length: int, size: int) -> Tensor:
    """``(n, size)``: the 0/1 indicator of each span over ``length`` pixels, resized."""
    indicators = torch.zeros(len(spans), 1, length, dtype=torch.float64)
    for i, (start, extent) in enumerate(spans):
        first = round(length * start)
        indicators[i, 0, first:first + round(length * extent)] = 1.0
    return F.interpolate(indicators, size=int(size), mode="linear", align_corners=False)[:, 0]


class LocalMapMerger:
    """Merges the local maps of a scene's patches into global-sized maps (L->G).

    Create it with G's maps (for their sizes), :meth:`add` each sub-batch of
    local maps with its boxes, then :meth:`average` once every patch is in.
    """

    def __init__(self, global_maps: FeatureMaps) -> None:
        """Start empty sums shaped like ``global_maps`` (batch of 1)."""
        self._sums = [torch.zeros_like(t) for t in global_maps.tensors()]

    @torch.no_grad()
    def add(self, local_maps: FeatureMaps, boxes: Sequence[Box]) -> None:
        """Add the (detached) maps of ``len(boxes)`` patches at their boxes."""
        for total, local in zip(self._sums, local_maps.tensors(), strict=True):
            height, width = total.shape[-2:]
            for i, box in enumerate(boxes):
                rows, cols = box_slices(box, height, width)
                resized = resize(local[i:i + 1], (rows.stop - rows.start, cols.stop - cols.start))
                target = total[:, :, rows, cols]
                target += resized[:, :, :target.shape[-2], :target.shape[-1]]

    def average(self, boxes: Sequence[Box], scene_shape: Sequence[int]) -> FeatureMaps:
        """Return the sums divided by the patch coverage resized to each map's size.

        Where patches cover the scene the coverage is at least 1; it is
        clamped to 1 so that cells no patch covers stay 0.
        """
        cache: dict[tuple[int, int], Tensor] = {}
        averaged = []
        for total in self._sums:
            size = tuple(total.shape[-2:])
            if size not in cache:
                count = coverage(boxes, scene_shape, size).clamp_min(1.0)
                cache[size] = count.to(total.device, total.dtype)
            averaged.append(total / cache[size])
        return FeatureMaps.from_tensors(averaged)
