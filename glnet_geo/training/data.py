"""Training and evaluation data: which dataset, its classes, its scenes and loaders."""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field
from enum import StrEnum

import lightning as L
import rasterio
from rasterio.errors import NotGeoreferencedWarning
from torch.utils.data import DataLoader, Dataset, Sampler

from glnet_geo.checkpoint import ModelConfig
from glnet_geo.classes import DEEPGLOBE, INRIA, ClassPreset
from glnet_geo.datasets.custom import (
    ClassTable,
    CustomDataset,
    CustomScenes,
    RandomScenes,
    image_normalization,
)
from glnet_geo.datasets.deepglobe import DeepGlobe
from glnet_geo.datasets.inria import Inria, InriaSplitRule
from glnet_geo.datasets.sample import SceneViews, collate_scenes
from glnet_geo.datasets.split import Split
from glnet_geo.errors import InputError
from glnet_geo.imagery import DEEPGLOBE_IMAGERY, INRIA_IMAGERY, ImageryProfile, profile_rasters
from glnet_geo.io.reader import Normalization

log = logging.getLogger(__name__)

#: ImageNet statistics on 0..255 RGB, the normalisation of the RGB presets.
IMAGENET = Normalization(scale=255.0, mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])


class DatasetKind(StrEnum):
    """The datasets glnet-geo trains and evaluates on."""

    DEEPGLOBE = "deepglobe"
    INRIA = "inria"
    CUSTOM = "custom"


#: Scene side of the published datasets (each image is one scene).
PRESET_SCENE_SIZE = {DatasetKind.DEEPGLOBE: 2448, DatasetKind.INRIA: 5000}
#: Imagery of the published datasets (their pixel size is not in their files).
PRESET_IMAGERY = {DatasetKind.DEEPGLOBE: DEEPGLOBE_IMAGERY, DatasetKind.INRIA: INRIA_IMAGERY}


#: Scene side of custom data when tiles are at least this large (a DeepGlobe image's).
DEFAULT_SCENE_SIZE = 2448


def custom_scene_size(dataset: CustomDataset, scene_size: int | None) -> int:
    """Return the scene side for custom data: ``scene_size``, or chosen from the tiles.

    Without an explicit size, scenes are :data:`DEFAULT_SCENE_SIZE` px; when
    tiles are smaller than that (e.g. SpaceNet's 900 px chips), each tile is
    trained as one whole scene, as DeepGlobe images are: the scene side is the
    smallest tile side (tiles larger than it give random crops of that side).
    One warning line says so.
    """
    if scene_size is not None:
        return int(scene_size)
    shapes = dataset.tile_shapes
    side = min(min(shape) for shape in shapes)
    if side >= DEFAULT_SCENE_SIZE:
        return DEFAULT_SCENE_SIZE
    log.warning("the image tiles are smaller than the default scene (%d px; smallest tile %d x "
                "%d px): each tile is trained as one whole scene of %d px, as DeepGlobe images "
                "are; --scene-size PX overrides", DEFAULT_SCENE_SIZE,
                *min(shapes, key=min), side)
    return side


@dataclass
class DataSettings:
    """Where the data is and how it is split.

    Attributes:
        kind: Which dataset.
        root: Root folder of DeepGlobe or Inria.
        images: Custom imagery (paths, folders, globs).
        labels: Custom label rasters, or one vector file.
        label_field: Class attribute of a vector label file.
        classes: A class file for custom data.
        layer: Layer of a multi-layer vector file.
        val_images: Custom validation imagery (none: no validation).
        val_labels: Its labels.
        paper_split: DeepGlobe: the paper's 454 / 207 / 142 ids.
        inria_rule: Inria: split by city or the paper's random split.
        scene_size: Custom: side of the training scenes in pixels (None:
            :data:`DEFAULT_SCENE_SIZE`, or the tiles' when they are smaller;
            see :func:`custom_scene_size`).
        samples_per_epoch: Custom: random scenes per epoch (default: about
            the number of non-overlapping scenes in the imagery).

    """

    kind: DatasetKind
    root: str | None = None
    images: list[str] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    label_field: str | None = None
    classes: str | None = None
    layer: str | None = None
    val_images: list[str] = field(default_factory=list)
    val_labels: list[str] = field(default_factory=list)
    paper_split: bool = False
    inria_rule: InriaSplitRule = InriaSplitRule.CITY
    scene_size: int | None = None
    samples_per_epoch: int | None = None

    def __post_init__(self) -> None:
        self.kind = DatasetKind(self.kind)
        if self.kind is DatasetKind.CUSTOM:
            if not self.images or not self.labels:
                raise InputError("custom data needs --images (GeoTIFFs) and --labels (label "
                                 "GeoTIFFs or one vector file)")
            if bool(self.val_images) != bool(self.val_labels):
                raise InputError("give --val-images and --val-labels together")
        elif not self.root:
            raise InputError(f"{self.kind.value} needs --root, the folder holding the dataset")


@dataclass
class TrainingData:
    """The scenes of a training run and what the checkpoint must know about them.

    Attributes:
        train: Training scenes (indexed by ``train_sampler``'s items if given).
        train_sampler: Draws training scenes (custom data), or None (shuffle).
        val: Validation scenes, or None.
        classes: Class names, colours and the ignored class.
        in_channels: Number of image bands.
        normalization: How raw values become network inputs.
        scene_size: Side of a scene in pixels.
        imagery: The training imagery's dtype, value range and pixel size.

    """

    train: Dataset
    train_sampler: Sampler | None
    val: Dataset | None
    classes: ClassTable
    in_channels: int
    normalization: Normalization
    scene_size: int
    imagery: ImageryProfile | None = None


def _preset_table(preset: ClassPreset) -> ClassTable:
    return ClassTable(list(preset.names), list(preset.colors), preset.ignore_index)


def _preset_dataset(settings: DataSettings, split: Split, views: SceneViews | None) -> Dataset:
    if settings.kind is DatasetKind.DEEPGLOBE:
        return DeepGlobe(settings.root, split, paper_split=settings.paper_split, views=views)
    return Inria(settings.root, split, rule=settings.inria_rule, views=views)


def open_training_data(settings: DataSettings, global_size: int, patch_size: int,
                       min_overlap: int, augment: bool = True,
                       classes: ClassTable | None = None) -> TrainingData:
    """Open the training (and validation) scenes of a dataset.

    Args:
        settings: Which data.
        global_size: Side of the global view.
        patch_size: Side of the patches.
        min_overlap: Minimum overlap of patches.
        augment: Random flips and rotations of the training scenes.
        classes: Custom data: the classes to use (default: found in the data).

    Raises:
        InputError: Missing or malformed data (one line naming what and where).

    """
    def views(normalization: Normalization, train: bool) -> SceneViews:
        return SceneViews(global_size, patch_size, min_overlap, normalization,
                          augment=augment and train)

    if settings.kind is not DatasetKind.CUSTOM:
        preset = DEEPGLOBE if settings.kind is DatasetKind.DEEPGLOBE else INRIA
        train = _preset_dataset(settings, Split.TRAIN, views(IMAGENET, True))
        try:
            val = _preset_dataset(settings, Split.VAL, views(IMAGENET, False))
        except InputError as exc:  # e.g. a layout with training images only
            log.warning("no validation: %s", exc)
            val = None
        with warnings.catch_warnings():  # DeepGlobe JPEGs carry no georeferencing
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.open(train.items[0][0]) as src:  # the size, without the pixels
                side = max(src.height, src.width)
        imagery = profile_rasters([item[0] for item in train.items],
                                  PRESET_IMAGERY[settings.kind].pixel_size)
        return TrainingData(train, None, val, _preset_table(preset), 3, IMAGENET, side,
                            imagery)
    dataset = CustomDataset(settings.images, settings.labels, settings.label_field,
                            settings.classes or classes, settings.layer)
    normalization = image_normalization(dataset.image_files)
    scene_size = custom_scene_size(dataset, settings.scene_size)
    sampler = dataset.random_sampler(scene_size, settings.samples_per_epoch)
    train = RandomScenes(dataset, views(normalization, True))
    val = None
    if settings.val_images:
        held_out = CustomDataset(settings.val_images, settings.val_labels,
                                 settings.label_field, dataset.classes, settings.layer)
        val = CustomScenes(held_out, held_out.grid_scenes(scene_size),
                           views(normalization, False))
    return TrainingData(train, sampler, val, dataset.classes, dataset.in_channels,
                        normalization, scene_size, profile_rasters(dataset.image_files))


def open_evaluation_data(settings: DataSettings, config: ModelConfig,
                         split: Split | str = Split.TEST, checkpoint: str = "the checkpoint"
                         ) -> Dataset:
    """Open labelled scenes to score a checkpoint on, with the checkpoint's views.

    Custom labels are read with the checkpoint's classes unless a class file
    is given; either way they must not hold more classes than it predicts.

    Raises:
        InputError: Missing data, or labels with classes the checkpoint lacks.

    """
    views = SceneViews(config.global_size, config.patch_size, config.min_overlap,
                       config.normalization)
    if Split(split) is Split.CROSSVALI and not (settings.kind is DatasetKind.DEEPGLOBE
                                                and settings.paper_split):
        raise InputError("--split crossvali is the GLNet paper's DeepGlobe validation list "
                         "(crossvali.txt, 207 ids); use it with deepglobe --paper-split, or "
                         "--split val / test here")
    if settings.kind is not DatasetKind.CUSTOM:
        preset = DEEPGLOBE if settings.kind is DatasetKind.DEEPGLOBE else INRIA
        _check_class_count(len(preset.names), config, checkpoint, settings.kind.value)
        return _preset_dataset(settings, Split(split), views)
    own = ClassTable(list(config.class_names), list(config.class_colors), config.ignore_index,
                     source=f"the classes of {checkpoint}")
    dataset = CustomDataset(settings.images, settings.labels, settings.label_field,
                            settings.classes or own, settings.layer)
    _check_class_count(dataset.classes.num_classes, config, checkpoint, "the labels")
    if dataset.in_channels != config.in_channels:
        raise InputError(f"the images have {dataset.in_channels} bands but {checkpoint} takes "
                         f"{config.in_channels}; evaluate on imagery with the training bands")
    return CustomScenes(dataset, dataset.grid_scenes(config.scene_size), views)


def _check_class_count(count: int, config: ModelConfig, checkpoint: str, what: str) -> None:
    if count > config.num_classes:
        raise InputError(f"{what} have {count} classes but {checkpoint} predicts "
                         f"{config.num_classes} ({', '.join(config.class_names)}); evaluate "
                         "with a checkpoint trained on these classes")


class GLNetDataModule(L.LightningDataModule):
    """Loaders of a :class:`TrainingData`: batches are lists of scenes.

    Args:
        data: The scenes.
        batch_size: Scenes per optimizer step (6 in the paper).
        num_workers: Loader worker processes.

    """

    def __init__(self, data: TrainingData, batch_size: int = 6, num_workers: int = 0) -> None:
        super().__init__()
        self.data = data
        self.batch_size = batch_size
        self.num_workers = num_workers

    def _loader(self, dataset: Dataset, batch_size: int, shuffle: bool = False,
                sampler: Sampler | None = None) -> DataLoader:
        return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, sampler=sampler,
                          collate_fn=collate_scenes, num_workers=self.num_workers,
                          persistent_workers=self.num_workers > 0)

    def train_dataloader(self) -> DataLoader:
        """Shuffled whole-image scenes, or scenes drawn by the custom data's sampler."""
        sampler = self.data.train_sampler
        return self._loader(self.data.train, self.batch_size, shuffle=sampler is None,
                            sampler=sampler)

    def val_dataloader(self) -> DataLoader | list:
        """Load validation scenes one at a time (none: an empty list)."""
        if self.data.val is None:
            return []
        return self._loader(self.data.val, 1)

