"""The scene grid: how a raster of any size is cut into scenes GLNet sees whole.

A scene has two windows on the raster:

- ``read``: what the scene reads and GLNet looks at as a whole (the global
  view is this window downsampled to ``global_size``). Its side is the
  checkpoint's ``scene_size`` wherever the raster is at least that large, so
  every scene is seen at the scale the model was trained at.
- ``core``: the pixels this scene writes. Cores tile the raster without
  overlap; each core lies at least ``halo`` pixels inside its read window on
  every side that does not touch the raster's edge, so the pixels written
  next to a seam were predicted with context on both sides of it.

Read windows are laid like the patch grid: evenly spaced, neighbours
overlapping by at least ``2 * halo``, the first and last flush with the
raster's edges. Each seam sits in the middle of the overlap of its two scenes.
When one scene covers the raster, its read window and core are the raster
window itself.

:func:`in_bands` orders the scenes for a bounded block cache: rows of scenes
overlap, so a row re-reads tiles the row above it read; visited band by band,
those tiles are still cached whatever the raster's width.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from rasterio.windows import Window

from glnet_geo.errors import InputError


@dataclass(frozen=True)
class Scene:
    """One scene of a raster.

    Attributes:
        index: Position of the scene in the grid, row-major.
        read: Raster pixels the scene reads (core plus halo, inside the raster).
        core: Raster pixels the scene writes.

    """

    index: int
    read: Window
    core: Window

    @property
    def core_in_read(self) -> Window:
        """Return the core as a window on the read window's pixels."""
        return Window(self.core.col_off - self.read.col_off,
                      self.core.row_off - self.read.row_off,
                      self.core.width, self.core.height)


def default_halo(patch_size: int) -> int:
    """Return the halo used when none is given: half a patch.

    Every written pixel then has at least half a patch of context on the far
    side of a seam, which is what a patch centred on the seam would see.
    """
    return patch_size // 2


def _spans(length: int, size: int, halo: int) -> list[tuple[int, int, int, int]]:
    """Scenes along one axis as (read start, read stop, core start, core stop)."""
    if length <= size:
        return [(0, length, 0, length)]
    step = size - 2 * halo
    count = math.ceil((length - size) / step) + 1
    starts = [round(i * (length - size) / (count - 1)) for i in range(count)]
    cuts = [0] + [(starts[i + 1] + starts[i] + size) // 2 for i in range(count - 1)] + [length]
    return [(start, start + size, cuts[i], cuts[i + 1]) for i, start in enumerate(starts)]


def scene_grid(height: int, width: int, scene_size: int, halo: int) -> list[Scene]:
    """Cut a raster into scenes with a halo.

    Args:
        height: Raster height in pixels.
        width: Raster width in pixels.
        scene_size: Side of a scene's read window in pixels.
        halo: Minimum context in pixels kept around each core where it meets
            another core.

    Returns:
        The scenes, row-major; their cores tile the raster exactly.

    Raises:
        InputError: ``scene_size`` leaves no core once the halo is taken off.

    """
    if height < 1 or width < 1:
        raise InputError(f"raster size {width}x{height} px is empty; give a raster with pixels")
    if halo < 0 or scene_size - 2 * halo < 1:
        raise InputError(
            f"scene size {scene_size} px leaves no core with a halo of {halo} px on each side; "
            f"use a scene size above {2 * halo} px (--scene-size) or a smaller halo")
    rows = _spans(height, scene_size, halo)
    cols = _spans(width, scene_size, halo)
    scenes = []
    for r0, r1, c0, c1 in rows:
        for q0, q1, k0, k1 in cols:
            scenes.append(Scene(index=len(scenes),
                                read=Window(q0, r0, q1 - q0, r1 - r0),
                                core=Window(k0, c0, k1 - k0, c1 - c0)))
    return scenes


def in_bands(scenes: Sequence[Scene], band_width: int) -> list[Scene]:
    """Order scenes band by band: vertical bands ``band_width`` px wide.

    A scene belongs to the band its read window starts in; bands go left to
    right, each top to bottom, each row of a band left to right.

    Args:
        scenes: Scenes of :func:`scene_grid`.
        band_width: Width of a band in pixels (at least 1).

    Returns:
        The same scenes in band order (their ``index`` unchanged).

    """
    return sorted(scenes, key=lambda s: (int(s.read.col_off) // band_width, s.read.row_off,
                                         s.read.col_off))
