"""Tiny seeded scenes for the model tests (a GLNet grid over a random image)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from glnet_geo.io.grid import boxes_from_windows, patch_windows

SCENE_SHAPE = (50, 60)
PATCH = 32
GLOBAL = 32


@dataclass
class Scene:
    global_image: torch.Tensor
    patches: torch.Tensor
    boxes: torch.Tensor
    shape: tuple[int, int]


def make_scene(bands: int = 3, seed: int = 0, shape=SCENE_SHAPE, patch=PATCH,
               global_size=GLOBAL, min_overlap=10) -> Scene:
    """A random scene cut into patches on the GLNet grid, with its global view."""
    gen = torch.Generator().manual_seed(seed)
    image = torch.rand(1, bands, *shape, generator=gen)
    windows = patch_windows(*shape, patch, min_overlap)
    patches = torch.cat([image[:, :, w.row_off:w.row_off + patch, w.col_off:w.col_off + patch]
                         for w in windows])
    global_image = torch.nn.functional.interpolate(image, size=(global_size, global_size),
                                                   mode="bilinear", align_corners=False)
    return Scene(global_image, patches, boxes_from_windows(windows, *shape), shape)
