"""DeepGlobe Land Cover, in the layout torchgeo's ``DeepGlobeLandCover`` reads.

::

    ROOT/data/training_data/images/<id>_sat.jpg   ROOT/data/training_data/masks/<id>_mask.png
    ROOT/data/test_data/images/<id>_sat.jpg       ROOT/data/test_data/masks/<id>_mask.png

(``ROOT`` may also be the ``data`` folder itself.) Masks are RGB-coded with the
colours of :data:`glnet_geo.classes.DEEPGLOBE`; each image is one 2448 x 2448
scene. By default ``train`` is ``training_data`` and ``val``/``test`` are
``test_data``; with ``paper_split`` the splits are the GLNet paper's 454 / 207 /
142 image ids (``splits/*.txt``), wherever they lie under ``data``: ``train``
is ``train.txt``, ``val`` and ``crossvali`` are ``crossvali.txt`` (207 ids, what
the official code scores and the paper's Table 2 reports), ``test`` is
``test.txt`` (142 ids, unused by the official code).

DeepGlobe masks are PNGs whose colours are not always exactly 0 or 255 in every
channel; a mask pixel takes the palette colour within :data:`COLOR_TOLERANCE`
of it in every channel, and a pixel near no palette colour is an error.
"""

from __future__ import annotations

import logging
import os
from importlib import resources
from pathlib import Path

import numpy as np
from PIL import Image
from torch.utils.data import Dataset

from glnet_geo.classes import DEEPGLOBE, ClassPreset
from glnet_geo.datasets.sample import SceneSample, SceneViews
from glnet_geo.datasets.split import Split
from glnet_geo.errors import InputError

logger = logging.getLogger(__name__)

#: Largest per-channel distance between a mask pixel and its palette colour.
COLOR_TOLERANCE = 64

#: Folders of the torchgeo layout, by split of that layout.
LAYOUT_FOLDERS = {"train": "training_data", "test": "test_data"}


#: The paper's split lists (shipped with the package), by split.
PAPER_SPLIT_FILES = {Split.TRAIN: "train.txt", Split.VAL: "crossvali.txt",
                     Split.CROSSVALI: "crossvali.txt", Split.TEST: "test.txt"}


def paper_split_ids(split: Split | str) -> list[str]:
    """Image ids of the GLNet paper's DeepGlobe split (454 / 207 / 142)."""
    name = PAPER_SPLIT_FILES[Split(split)]
    text = resources.files("glnet_geo.datasets").joinpath("splits", name).read_text()
    return [line.strip().removesuffix("_sat.jpg") for line in text.splitlines() if line.strip()]


def rgb_to_classes(mask: np.ndarray, preset: ClassPreset = DEEPGLOBE,
                   tolerance: int = COLOR_TOLERANCE, name: str = "mask") -> np.ndarray:
    """Map an RGB-coded mask to class ids.

    Args:
        mask: ``(H, W, 3)`` uint8 colours.
        preset: The classes and their colours.
        tolerance: Largest per-channel distance to a palette colour.
        name: How to name the mask in errors.

    Returns:
        ``(H, W)`` uint8 class ids.

    Raises:
        InputError: Pixels whose colour is near no palette colour (the message
            names the colours, how many pixels and where the first one is).

    """
    if mask.ndim != 3 or mask.shape[-1] < 3:
        raise InputError(f"{name} has shape {mask.shape}; expected an RGB-coded mask "
                         "(height, width, 3)")
    rgb = mask[..., :3].astype(np.int16)
    palette = np.asarray(preset.colors, dtype=np.int16)
    classes = np.full(rgb.shape[:2], 255, dtype=np.uint8)
    for class_id, color in enumerate(palette):
        near = (np.abs(rgb - color) <= tolerance).all(-1)
        classes[near & (classes == 255)] = class_id
    outside = classes == 255
    if outside.any():
        rows, cols = np.nonzero(outside)
        colors, counts = np.unique(rgb[outside], axis=0, return_counts=True)
        order = np.argsort(-counts)[:3]
        listed = ", ".join(f"{tuple(int(v) for v in colors[i])} x{counts[i]}" for i in order)
        expected = ", ".join(f"{n} {c}" for n, c in zip(preset.names, preset.colors,
                                                        strict=True))
        raise InputError(
            f"{name} has {int(outside.sum())} pixels with colours outside the palette "
            f"({listed}{', ...' if len(colors) > 3 else ''}; first at row {rows[0]}, column "
            f"{cols[0]}); expected the colours {expected}; recolour those pixels")
    return classes


class DeepGlobe(Dataset):
    """DeepGlobe Land Cover scenes (one image = one scene).

    Args:
        root: The dataset root (holding ``data/``) or the ``data`` folder.
        split: ``train``, ``val`` or ``test``.
        paper_split: Use the GLNet paper's 454 / 207 / 142 ids.
        views: Turns each scene into a :class:`SceneSample`; without it,
            items are ``(image, label)`` arrays.

    Raises:
        InputError: The root does not hold the layout, or a split is empty.

    """

    preset = DEEPGLOBE

    def __init__(self, root: str | os.PathLike, split: Split | str = Split.TRAIN,
                 paper_split: bool = False, views: SceneViews | None = None) -> None:
        self.root = Path(root)
        self.split = Split(split)
        self.views = views
        if self.split is Split.CROSSVALI and not paper_split:
            raise InputError("split 'crossvali' is the paper split's crossvali.txt (207 ids); "
                             "add --paper-split")
        data = _data_folder(self.root)
        if paper_split:
            wanted = paper_split_ids(self.split)
            found = {p.name.removesuffix("_sat.jpg"): p
                     for folder in LAYOUT_FOLDERS.values()
                     for p in (data / folder / "images").glob("*_sat.jpg")}
            present = [i for i in wanted if i in found]
            if not present:
                raise InputError(
                    f"none of the {len(wanted)} images of the paper's {self.split.value} split "
                    f"(e.g. {wanted[0]}_sat.jpg) is under {data}; --paper-split needs the 803 "
                    "labelled DeepGlobe images in training_data/ and test_data/")
            if len(present) < len(wanted):
                logger.warning("only %d of the %d images of the paper's %s split are under %s",
                               len(present), len(wanted), self.split.value, data)
            images = [found[i] for i in present]
        else:
            folder = LAYOUT_FOLDERS["train" if self.split is Split.TRAIN else "test"]
            images = sorted((data / folder / "images").glob("*_sat.jpg"))
            if not images:
                raise InputError(f"{data / folder / 'images'} holds no <id>_sat.jpg image; the "
                                 f"{self.split.value} split of the DeepGlobe layout is empty")
        self.items = [(p, p.parent.parent / "masks" / p.name.replace("_sat.jpg", "_mask.png"))
                      for p in images]
        missing = [m for _, m in self.items if not m.is_file()]
        if missing:
            raise InputError(f"{len(missing)} DeepGlobe mask(s) missing, e.g. {missing[0]}; "
                             "every <id>_sat.jpg needs its <id>_mask.png in masks/")

    def __len__(self) -> int:
        return len(self.items)

    def read(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """``(3, H, W)`` uint8 image and ``(H, W)`` uint8 class ids of scene ``index``."""
        image_path, mask_path = self.items[index]
        with Image.open(image_path) as img:
            image = np.asarray(img.convert("RGB")).transpose(2, 0, 1)
        with Image.open(mask_path) as msk:
            mask = np.asarray(msk.convert("RGB"))
        if mask.shape[:2] != image.shape[1:]:
            raise InputError(f"{mask_path} is {mask.shape[1]} x {mask.shape[0]} px but its image "
                             f"is {image.shape[2]} x {image.shape[1]} px; masks must match images")
        return image, rgb_to_classes(mask, self.preset, name=str(mask_path))

    def __getitem__(self, index: int) -> SceneSample | tuple[np.ndarray, np.ndarray]:
        image, label = self.read(index)
        if self.views is None:
            return image, label
        return self.views(image, label, name=self.items[index][0].name)


def _data_folder(root: Path) -> Path:
    """Find the folder holding ``training_data``/``test_data``; a clear error if none."""
    for data in (root / "data", root):
        if any((data / f / "images").is_dir() for f in LAYOUT_FOLDERS.values()):
            return data
    found = sorted(p.name for p in root.iterdir())[:8] if root.is_dir() else []
    what = f"found {found}" if root.is_dir() else "it does not exist"
    raise InputError(
        f"{root} is not a DeepGlobe Land Cover root: expected {root}/data/training_data/"
        f"{{images/<id>_sat.jpg,masks/<id>_mask.png}} (and test_data/), torchgeo's "
        f"DeepGlobeLandCover layout; {what}")
