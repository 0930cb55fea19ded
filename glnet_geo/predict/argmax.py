"""Classes from scores: the argmax, and the argmax of bilinearly upsampled logits.

Global mode's classes are the argmax of G's logits (at 1/4 of the global view)
upsampled bilinearly to the scene. Each upsampled pixel is a weighted mean of
the 2 x 2 low-resolution cells around its source point, so where one class is
the first maximum at all four cells it is the pixel's class as well: a mean of
values none above the class's own is not above it. :func:`upsampled_class_ids`
therefore interpolates only the pixels whose four cells disagree (about 6 % of a
928 px scene's core with random weights), in the arithmetic of PyTorch's
bilinear kernel (along rows, then between them, in float32). Its classes are
those of ``F.interpolate(..., mode="bilinear", align_corners=False)`` followed by
the argmax except where two classes tie to within float32 rounding (as they may
between PyTorch's own channels-first and channels-last kernels).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from rasterio.windows import Window

#: Above this share of disagreeing cells, :func:`upsampled_class_ids` upsamples
#: every pixel instead (interpolating most pixels one by one is slower).
MAX_DISAGREEING = 0.4


def class_ids(scores: torch.Tensor, rows: int = 256) -> np.ndarray:
    """Return the class of each pixel of ``(K, H, W)`` scores as ``(H, W)`` uint8.

    The argmax is taken ``rows`` rows at a time, so no full-size int64 index
    map is held; ``max(0).indices`` is ``argmax(0)`` (first maximum on ties),
    several times faster on the CPU.
    """
    classes = torch.empty(scores.shape[1:], dtype=torch.uint8, device=scores.device)
    for start in range(0, scores.shape[1], rows):
        classes[start:start + rows] = scores[:, start:start + rows].max(0).indices
    return classes.cpu().numpy()


def upsampled_class_ids(logits: torch.Tensor, size: tuple[int, int], crop: Window) -> np.ndarray:
    """Return the classes of ``logits`` upsampled bilinearly to ``size``, within ``crop``.

    The same classes as ``class_ids(F.interpolate(logits[None], size,
    mode="bilinear", align_corners=False)[0, :, rows, cols])``. On the CPU
    only the pixels whose 2 x 2 source cells disagree are interpolated (see
    the module's docstring); on other devices, or where more than
    :data:`MAX_DISAGREEING` of the cells disagree, every pixel is.

    Args:
        logits: ``(K, h, w)`` float32 scores.
        size: ``(H, W)``, the upsampled size.
        crop: The part of the ``(H, W)`` grid to return.

    Returns:
        ``(crop.height, crop.width)`` uint8 class ids.

    """
    rows, cols = crop.toslices()
    low = logits.max(0).indices.to(torch.uint8)
    if logits.device.type == "cpu":
        low = low.numpy()
        edge = np.pad(low, ((0, 1), (0, 1)), mode="edge")
        agree = (low == edge[1:, :-1]) & (low == edge[:-1, 1:]) & (low == edge[1:, 1:])
        if 1 - agree.mean() <= MAX_DISAGREEING:
            return _interpolate_where_disagreeing(logits.detach().numpy(), low, agree, size,
                                                  rows, cols)
    scores = F.interpolate(logits[None], size=size, mode="bilinear", align_corners=False)
    return class_ids(scores[0, :, rows, cols])


def _interpolate_where_disagreeing(logits: np.ndarray, low: np.ndarray, agree: np.ndarray,
                                   size: tuple[int, int], rows: slice, cols: slice) -> np.ndarray:
    """Return the crop's classes: ``low``'s where the cells agree, interpolated elsewhere."""
    top, bottom, top_weight, bottom_weight = _source_cells(logits.shape[1], size[0], rows)
    left, right, left_weight, right_weight = _source_cells(logits.shape[2], size[1], cols)
    classes = np.take(np.take(low, top, 0), left, 1)
    width = classes.shape[1]
    unsure = np.flatnonzero(np.take(np.take(~agree, top, 0), left, 1))
    if len(unsure):
        row, col = np.divmod(unsure, width)
        grid = logits.transpose(1, 2, 0)  # (h, w, K)
        across = (np.take(grid, left, 1) * left_weight[:, None]
                  + np.take(grid, right, 1) * right_weight[:, None]).reshape(-1, len(logits))
        values = (np.take(across, top[row] * width + col, 0) * top_weight[row, None]
                  + np.take(across, bottom[row] * width + col, 0) * bottom_weight[row, None])
        classes.reshape(-1)[unsure] = values.argmax(1)
    return classes


def _source_cells(length: int, upsampled: int, span: slice) -> tuple[np.ndarray, np.ndarray,
                                                                      np.ndarray, np.ndarray]:
    """Return PyTorch's bilinear sources (``align_corners=False``) of the pixels in ``span``.

    Returns:
        For each upsampled pixel: the lower and upper source cells and their
        float32 weights, as PyTorch's CPU kernel computes them.

    """
    scale = np.float32(length) / np.float32(upsampled)
    half = np.float32(0.5)
    source = np.maximum((np.arange(span.start, span.stop, dtype=np.float32) + half) * scale
                        - half, np.float32(0))
    lower = np.minimum(source.astype(np.int64), length - 1)
    upper = np.minimum(lower + 1, length - 1)
    fraction = source - lower.astype(np.float32)
    return lower, upper, np.float32(1) - fraction, fraction
