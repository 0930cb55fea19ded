"""torchgeo's datasets and samplers feeding GLNet's training.

torchgeo yields samples as dicts of tensors (``image`` ``(C, H, W)`` and
``mask`` ``(H, W)``); GLNet trains on :class:`~glnet_geo.datasets.sample.SceneSample`
(the scene, its global view, its patches and their boxes).
:class:`TorchGeoScenes` turns one into the other, so that any torchgeo dataset
trains GLNet:

- a ``NonGeoDataset`` such as ``DeepGlobeLandCover`` or
  ``InriaAerialImageLabeling`` is indexed by integers, each sample one scene;
- a ``GeoDataset`` (``RasterDataset``, ``VectorDataset``, their ``&``/``|``)
  is indexed by the queries of a ``GeoSampler`` (``RandomGeoSampler``,
  ``GridGeoSampler``...), which :func:`scene_loader` hands to the loader.

:class:`~glnet_geo.training.module.GLNetModule` is a plain LightningModule: with
such a loader it trains in a user's own ``lightning.Trainer``::

    from lightning import Trainer
    from torchgeo.datasets import DeepGlobeLandCover

    from glnet_geo.checkpoint import ModelConfig
    from glnet_geo.classes import DEEPGLOBE
    from glnet_geo.datasets.sample import SceneViews
    from glnet_geo.datasets.torchgeo_scenes import TorchGeoScenes, scene_loader
    from glnet_geo.models.stages import Stage
    from glnet_geo.training.data import IMAGENET
    from glnet_geo.training.module import GLNetModule

    views = SceneViews(global_size=508, patch_size=508, min_overlap=50,
                       normalization=IMAGENET, augment=True)
    scenes = TorchGeoScenes(DeepGlobeLandCover("data/deepglobe", split="train"), views)
    config = ModelConfig(class_names=list(DEEPGLOBE.names), class_colors=list(DEEPGLOBE.colors),
                         ignore_index=DEEPGLOBE.ignore_index, backbone="resnet50")
    Trainer(max_steps=1000).fit(GLNetModule(config, Stage.GLOBAL),
                                scene_loader(scenes, batch_size=6, shuffle=True))

The scenes are normalised by the views' :class:`~glnet_geo.checkpoint.Normalization`
(torchgeo returns raw values); record the same one in the ``ModelConfig`` so
that ``predict`` normalises rasters alike.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from glnet_geo.classes import NO_CLASS
from glnet_geo.datasets.sample import SceneSample, SceneViews, collate_scenes
from glnet_geo.errors import InputError


def _array(value: Any) -> np.ndarray:
    return value.numpy() if isinstance(value, torch.Tensor) else np.asarray(value)


class TorchGeoScenes(Dataset):
    """A torchgeo dataset whose samples are GLNet scenes.

    Args:
        dataset: Any torchgeo dataset (or any dataset of such dicts).
        views: How a scene becomes GLNet's views (sizes, normalisation,
            augmentation).
        image_key: The sample's image entry.
        mask_key: The sample's label entry.
        ignore_value: A mask value meaning "no label" (e.g. a label raster's
            nodata), mapped to :data:`~glnet_geo.classes.NO_CLASS`.
        label_map: A function applied to each ``(H, W)`` mask first (e.g. to
            renumber classes).

    """

    def __init__(self, dataset: Any, views: SceneViews, image_key: str = "image",
                 mask_key: str = "mask", ignore_value: int | None = None,
                 label_map: Callable[[np.ndarray], np.ndarray] | None = None) -> None:
        self.dataset = dataset
        self.views = views
        self.image_key, self.mask_key = image_key, mask_key
        self.ignore_value = ignore_value
        self.label_map = label_map

    def __len__(self) -> int:
        """Return the number of samples of a ``NonGeoDataset`` (a ``GeoDataset``: its files)."""
        return len(self.dataset)

    def __getitem__(self, index: Hashable) -> SceneSample:
        """Read sample ``index`` (an integer, or a sampler's query) as a scene.

        Raises:
            InputError: The sample lacks the image or the mask entry, or
                their sizes differ.

        """
        sample = self.dataset[index]
        missing = [k for k in (self.image_key, self.mask_key) if k not in sample]
        if missing:
            raise InputError(f"torchgeo sample {index!r} has no {', '.join(missing)} (it has "
                             f"{', '.join(sample)}); pass image_key= / mask_key=")
        image = _array(sample[self.image_key]).astype(np.float32)
        mask = _array(sample[self.mask_key])
        if mask.ndim == 3 and mask.shape[0] == 1:
            mask = mask[0]
        if image.ndim == 2:
            image = image[None]
        if mask.shape != image.shape[-2:]:
            raise InputError(f"torchgeo sample {index!r}: image {tuple(image.shape)} and mask "
                             f"{tuple(mask.shape)} differ in size; give a mask on the image's "
                             "grid")
        if self.label_map is not None:
            mask = self.label_map(mask)
        mask = mask.astype(np.int64)
        if self.ignore_value is not None:
            mask = np.where(mask == self.ignore_value, NO_CLASS, mask)
        return self.views(image, mask.astype(np.uint8), name=_name(index, sample))


def _name(index: Hashable, sample: dict) -> str:
    """Name a scene by its file or its query (for messages and logs)."""
    for key in ("path", "filename"):
        if key in sample:
            return str(sample[key])
    return str(index)[:120]


def scene_loader(scenes: TorchGeoScenes, batch_size: int = 6, *,
                 sampler: Sampler | None = None, shuffle: bool = False,
                 num_workers: int = 0) -> DataLoader:
    """Return a loader of scene batches (lists of scenes) for GLNet's LightningModule.

    Args:
        scenes: The scenes.
        batch_size: Scenes per optimizer step (6 in the paper).
        sampler: A torchgeo ``GeoSampler`` for a ``GeoDataset`` (its queries
            index the dataset), or any sampler.
        shuffle: Shuffle a ``NonGeoDataset``'s samples (not with a sampler).
        num_workers: Loader worker processes.

    """
    return DataLoader(scenes, batch_size=batch_size, sampler=sampler,
                      shuffle=shuffle and sampler is None, collate_fn=collate_scenes,
                      num_workers=num_workers)
