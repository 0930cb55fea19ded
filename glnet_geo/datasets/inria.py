"""Inria Aerial Image Labeling, in the layout of its archive.

::

    ROOT/AerialImageDataset/train/images/<city><n>.tif
    ROOT/AerialImageDataset/train/gt/<city><n>.tif      (0 background, 255 building)

(``ROOT`` may also be the ``AerialImageDataset`` folder.) Each 5000 x 5000 tile
is one scene, labelled :data:`glnet_geo.classes.INRIA` (background, building).
Only ``train/`` has labels, so every split is drawn from it:

- :attr:`InriaSplitRule.CITY` (default), the benchmark's rule: tiles 1 to 5 of
  each city are the validation set, the others train; ``test`` is the
  validation set too, since the labels of the official test tiles are
  withheld.
- :attr:`InriaSplitRule.PAPER`: the GLNet paper's random 126 / 27 / 27 split
  of the 180 tiles (70 / 15 / 15 per cent of whatever tiles there are), drawn
  with a fixed seed.

City and tile number are read from the file name only, never from the rest
of the path (torchgeo's ``InriaAerialImageLabeling`` matches its split regex
against the full path, so a root such as ``/data2/inria`` moves every tile
into one split).
"""

from __future__ import annotations

import os
import re
from enum import StrEnum
from pathlib import Path

import numpy as np
import rasterio
from torch.utils.data import Dataset

from glnet_geo.classes import INRIA
from glnet_geo.datasets.sample import SceneSample, SceneViews
from glnet_geo.datasets.split import Split
from glnet_geo.errors import InputError
from glnet_geo.io.reader import reading

#: ``<city><n>.tif``: the city is letters and dashes (``tyrol-w``), ``n`` 1..36.
TILE_NAME = re.compile(r"^(?P<city>[a-z][a-z-]*?)(?P<number>\d+)\.tif$", re.IGNORECASE)

#: Seed of the paper-style random split.
PAPER_SPLIT_SEED = 0


class InriaSplitRule(StrEnum):
    """How Inria tiles are divided into train / val / test."""

    CITY = "city"
    PAPER = "paper"


def parse_tile_name(name: str) -> tuple[str, int]:
    """City and tile number of a file name such as ``tyrol-w12.tif``.

    Raises:
        InputError: The name is not ``<city><n>.tif``.

    """
    match = TILE_NAME.match(name)
    if match is None:
        raise InputError(f"Inria tile {name!r} is not named <city><n>.tif (e.g. austin1.tif); "
                         "rename it or remove it from the images folder")
    return match["city"].lower(), int(match["number"])


def split_tiles(names: list[str], split: Split | str,
                rule: InriaSplitRule | str = InriaSplitRule.CITY) -> list[str]:
    """Pick the tile names of one split under one rule (see the module docstring).

    Args:
        names: Tile file names.
        split: ``train``, ``val`` or ``test``.
        rule: ``city`` or ``paper``.

    """
    split, rule = Split(split), InriaSplitRule(rule)
    names = sorted(names, key=parse_tile_name)
    if rule is InriaSplitRule.CITY:
        validation = [n for n in names if parse_tile_name(n)[1] <= 5]
        return [n for n in names if n not in validation] if split is Split.TRAIN else validation
    order = np.random.default_rng(PAPER_SPLIT_SEED).permutation(len(names))
    n_train, n_val = round(0.7 * len(names)), round(0.15 * len(names))
    bounds = {Split.TRAIN: (0, n_train), Split.VAL: (n_train, n_train + n_val),
              Split.TEST: (n_train + n_val, len(names))}[split]
    return [names[i] for i in sorted(order[bounds[0]:bounds[1]])]


def binary_mask(gt: np.ndarray, name: str = "gt") -> np.ndarray:
    """Map an Inria ground truth (0 / 255) to class ids 0 / 1.

    Raises:
        InputError: Values other than 0 and 255 (named, with where the first is).

    """
    bad = (gt != 0) & (gt != 255)
    if bad.any():
        rows, cols = np.nonzero(bad)
        values = np.unique(gt[bad])[:5].tolist()
        raise InputError(f"{name} has {int(bad.sum())} pixels with values {values} (first at "
                         f"row {rows[0]}, column {cols[0]}); Inria masks hold 0 (background) "
                         "and 255 (building) only")
    return (gt == 255).astype(np.uint8)


class Inria(Dataset):
    """Inria Aerial Image Labeling scenes (one tile = one scene).

    Args:
        root: The dataset root (holding ``AerialImageDataset/``) or that folder.
        split: ``train``, ``val`` or ``test``.
        rule: How tiles are split (:class:`InriaSplitRule`).
        views: Turns each scene into a :class:`SceneSample`; without it,
            items are ``(image, label)`` arrays.

    Raises:
        InputError: The root does not hold the layout, or the split is empty.

    """

    preset = INRIA

    def __init__(self, root: str | os.PathLike, split: Split | str = Split.TRAIN,
                 rule: InriaSplitRule | str = InriaSplitRule.CITY,
                 views: SceneViews | None = None) -> None:
        self.root = Path(root)
        self.split = Split(split)
        self.views = views
        train = _train_folder(self.root)
        names = sorted(p.name for p in (train / "images").glob("*.tif"))
        chosen = split_tiles(names, self.split, rule)
        if not chosen:
            raise InputError(f"the {self.split.value} split of {train / 'images'} is empty under "
                             f"the {InriaSplitRule(rule).value} rule ({len(names)} tiles found)")
        self.items = [(train / "images" / n, train / "gt" / n) for n in chosen]
        missing = [g for _, g in self.items if not g.is_file()]
        if missing:
            raise InputError(f"{len(missing)} Inria ground truth file(s) missing, e.g. "
                             f"{missing[0]}; every images/<city><n>.tif needs gt/<city><n>.tif")

    def __len__(self) -> int:
        return len(self.items)

    def read(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """``(3, H, W)`` image and ``(H, W)`` uint8 class ids of scene ``index``."""
        image_path, gt_path = self.items[index]
        with rasterio.open(image_path) as src, reading(src, role="image"):
            image = src.read()
        with rasterio.open(gt_path) as src, reading(src, role="label raster"):
            gt = src.read(1)
        if gt.shape != image.shape[1:]:
            raise InputError(f"{gt_path} is {gt.shape[1]} x {gt.shape[0]} px but its image is "
                             f"{image.shape[2]} x {image.shape[1]} px; gt must match images")
        return image, binary_mask(gt, str(gt_path))

    def __getitem__(self, index: int) -> SceneSample | tuple[np.ndarray, np.ndarray]:
        image, label = self.read(index)
        if self.views is None:
            return image, label
        return self.views(image, label, name=self.items[index][0].name)


def _train_folder(root: Path) -> Path:
    """``AerialImageDataset/train``; a clear error naming what was found if absent."""
    for base in (root / "AerialImageDataset", root):
        if (base / "train" / "images").is_dir():
            return base / "train"
    found = sorted(p.name for p in root.iterdir())[:8] if root.is_dir() else []
    what = f"found {found}" if root.is_dir() else "it does not exist"
    raise InputError(f"{root} is not an Inria Aerial root: expected {root}/AerialImageDataset/"
                     f"train/{{images,gt}}/<city><n>.tif; {what}")
