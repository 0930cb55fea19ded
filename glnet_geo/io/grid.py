"""The patch grid that GLNet's local branch reads a scene with.

Along each axis of a scene of ``side`` pixels, ``n`` patches of ``patch_size``
pixels are laid with the smallest ``n`` such that ``n * patch_size >= side``
and neighbours overlap by at least ``min_overlap`` pixels when spread evenly:
``patch_size - (side - patch_size) / (n - 1) >= min_overlap``. Patch ``i < n-1``
starts at ``round(i * step)`` with ``step = (side - patch_size) / (n - 1)``
(rounded half to even), the last one at ``side - patch_size``, flush with the
edge. This is the rule of the official GLNet code, so the patch offsets, and
hence the boxes the model sees, are the same as in its training.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from rasterio.windows import Window

from glnet_geo.errors import InputError


def patch_offsets(side: int, patch_size: int, min_overlap: int = 50) -> list[int]:
    """Return the starts of the patches along one axis of ``side`` pixels.

    A side no longer than ``patch_size`` gives ``[0]`` (the caller pads a
    shorter side up to ``patch_size``).

    Raises:
        InputError: Non-positive sizes, or ``min_overlap`` not in
            ``[0, patch_size)``.

    """
    _check_sizes(side, patch_size, min_overlap)
    if side <= patch_size:
        return [0]
    n = -(-side // patch_size)
    while patch_size - (side - patch_size) / (n - 1) < min_overlap:
        n += 1
    step = (side - patch_size) / (n - 1)
    return [round(i * step) for i in range(n - 1)] + [side - patch_size]


def patch_windows(height: int, width: int, patch_size: int, min_overlap: int = 50
                  ) -> list[Window]:
    """Windows of the patches that cover a ``height`` x ``width`` scene, row by row.

    Every pixel is covered; neighbours overlap by at least ``min_overlap``
    pixels; the last row and column end at the scene's edge. A side shorter
    than ``patch_size`` gives one window of ``patch_size`` starting at 0 that
    reaches past the scene (the caller pads the scene).

    Args:
        height: Scene rows.
        width: Scene columns.
        patch_size: Side of the square patches.
        min_overlap: Minimum overlap between neighbours, in pixels.

    Returns:
        Windows in row-major order (the order of the official code).

    """
    return [Window(col_off=left, row_off=top, width=patch_size, height=patch_size)
            for top in patch_offsets(height, patch_size, min_overlap)
            for left in patch_offsets(width, patch_size, min_overlap)]


def boxes_from_windows(windows: Sequence[Window], height: int, width: int) -> torch.Tensor:
    """Express windows as GLNet boxes: top, left, height, width fractions of the scene.

    Args:
        windows: Patch windows inside the scene.
        height: Scene rows (after any padding).
        width: Scene columns (after any padding).

    Returns:
        ``(N, 4)`` float64 tensor (float64 keeps ``top * H`` exact enough
        for the model to round crops as the official code does).

    Raises:
        InputError: A window reaching outside the scene.

    """
    if height < 1 or width < 1:
        raise InputError(f"scene size {height} x {width}; expected positive height and width")
    rows = []
    for window in windows:
        top, left = window.row_off, window.col_off
        if top < 0 or left < 0 or top + window.height > height or left + window.width > width:
            raise InputError(f"{window!r} reaches outside the {height} x {width} scene; pad the "
                             "scene to at least the patch size and pass the padded size")
        rows.append((top / height, left / width, window.height / height, window.width / width))
    return torch.tensor(rows, dtype=torch.float64).reshape(-1, 4)


def _check_sizes(side: int, patch_size: int, min_overlap: int) -> None:
    if side < 1 or patch_size < 1:
        raise InputError(f"scene side {side} px and patch size {patch_size} px; expected "
                         "positive sizes")
    if not 0 <= min_overlap < patch_size:
        raise InputError(f"min_overlap={min_overlap} px; expected 0 <= min_overlap < "
                         f"patch_size ({patch_size} px)")
