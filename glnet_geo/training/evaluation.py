"""Scoring GLNet on labelled scenes: training's validation and ``glnet-geo evaluate``.

A scene already in memory (:class:`~glnet_geo.datasets.sample.SceneSample`)
goes through the same :func:`glnet_geo.predict.blending.blend_scene` as a scene
read from a raster (G once, the patches in sub-batches, probabilities blended
where patches overlap; coarse-to-fine and patch skipping included). The
classes then go into one :class:`~glnet_geo.metrics.ConfusionMatrix`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

import torch
import torch.nn.functional as F
from torch import Tensor

from glnet_geo.checkpoint import ModelConfig
from glnet_geo.datasets.sample import SceneSample
from glnet_geo.datasets.split import Split
from glnet_geo.errors import InputError
from glnet_geo.metrics import ConfusionMatrix, SegmentationScores, scores
from glnet_geo.models import GLNet, GLNetMode
from glnet_geo.precision import Precision, resolve_precision
from glnet_geo.predict.blending import blend_scene
from glnet_geo.predict.settings import (
    PredictMode,
    SceneSettings,
    default_batch_size,
    prepare_checkpoint,
    resolve_device,
)
from glnet_geo.training.data import DataSettings, open_evaluation_data

#: Why ``--protocol official`` refuses coarse-to-fine and patch skipping.
OFFICIAL_PLAIN_ONLY = ("--protocol official scores the plain network, as the official evaluator "
                       "does; drop --mode coarse-to-fine and --skip-threshold")


class Protocol(StrEnum):
    """How scenes are predicted and scored (see the module docstring)."""

    OURS = "ours"
    OFFICIAL = "official"


@dataclass(frozen=True)
class ScoringMode:
    """Which logits are scored.

    Attributes:
        network_mode: The mode GLNet runs in.
        local_logits: Score L's own logits instead of the mode's final ones.
        coarse_to_fine: Run L only around G's foreground (coarse-to-fine).
        skip_threshold: Skip L where G is this confident (None: never).

    """

    network_mode: GLNetMode
    local_logits: bool = False
    coarse_to_fine: bool = False
    skip_threshold: float | None = None

    @classmethod
    def from_predict_mode(cls, config: ModelConfig, mode: PredictMode | str,
                          skip_threshold: float | None = None) -> ScoringMode:
        """Score as ``glnet-geo predict --mode`` predicts, for a checkpoint.

        Raises:
            InputError: A mode or threshold the checkpoint cannot run.

        """
        settings = SceneSettings.from_config(config, mode, skip_threshold=skip_threshold)
        return cls(settings.network_mode, settings.mode is PredictMode.LOCAL,
                   settings.mode is PredictMode.COARSE_TO_FINE, settings.skip_threshold)

    def settings(self, sample: SceneSample, batch_size: int) -> SceneSettings:
        """Return the prediction settings that score ``sample`` this way."""
        mode = (PredictMode.LOCAL if self.local_logits else
                PredictMode.COARSE_TO_FINE if self.coarse_to_fine else PredictMode.GLNET)
        return SceneSettings(mode, self.network_mode, int(sample.global_image.shape[-1]),
                             sample.patch_size, sample.min_overlap, batch_size,
                             self.skip_threshold)


def scene_probabilities(model: GLNet, sample: SceneSample, mode: ScoringMode,
                        batch_size: int = 8) -> Tensor:
    """Blended class probabilities of a whole scene.

    Args:
        model: GLNet in eval mode, on the sample's device.
        sample: The scene.
        mode: Which logits to use.
        batch_size: Patches per forward pass of L.

    Returns:
        ``(K, H, W)`` probabilities over the (padded) scene.

    """
    return blend_scene(model, sample.global_image[None], sample.windows, sample.crops,
                       sample.scene_shape, mode.settings(sample, batch_size))


def official_scene_classes(model: GLNet, sample: SceneSample, mode: ScoringMode,
                           batch_size: int = 8) -> Tensor:
    """Classes of a whole scene as the official GLNet evaluator predicts them.

    Each patch's logits (L's own when ``mode.local_logits``) are upsampled to
    the patch size with nearest and summed where patches overlap; in global
    mode G's logits are upsampled with nearest to the scene size. No
    test-time augmentation.

    Returns:
        ``(H, W)`` class ids over the (padded) scene.

    Raises:
        InputError: Coarse-to-fine or patch skipping, which the official
            evaluator does not do.

    """
    if mode.coarse_to_fine or mode.skip_threshold is not None:
        raise InputError(OFFICIAL_PLAIN_ONLY)
    height, width = sample.scene_shape
    global_image = sample.global_image[None]
    with torch.inference_mode():
        if mode.network_mode is GLNetMode.GLOBAL:
            logits = model(global_image, None, None, mode=GLNetMode.GLOBAL).logits.float()
            return F.interpolate(logits, size=(height, width), mode="nearest")[0].argmax(0)
        patch = sample.patch_size
        total = torch.zeros((model.num_classes, height, width), device=global_image.device)
        batches = (sample.patches(slice(i, i + batch_size))
                   for i in range(0, sample.num_patches, batch_size))
        for part in model.iter_scene(global_image, sample.boxes, batches,
                                     mode=mode.network_mode, scene_shape=(height, width)):
            logits = part.local_logits if mode.local_logits else part.logits
            up = F.interpolate(logits.float(), size=(patch, patch), mode="nearest")
            for scores, window in zip(up, sample.windows[part.index], strict=True):
                total[(slice(None), *window.toslices())] += scores
        return total.argmax(0)


def update_confusion(confusion: ConfusionMatrix, model: GLNet, samples: Iterable[SceneSample],
                     mode: ScoringMode, batch_size: int = 8,
                     protocol: Protocol | str = Protocol.OURS) -> None:
    """Predict each scene (as ``protocol`` says) and add its pixels to ``confusion``."""
    protocol = Protocol(protocol)
    for sample in samples:
        if protocol is Protocol.OFFICIAL:
            classes = official_scene_classes(model, sample, mode, batch_size)
        else:
            classes = scene_probabilities(model, sample, mode, batch_size).max(0).indices
        confusion.update(classes, sample.label.to(classes.device))


def evaluate(model: GLNet, config: ModelConfig, samples: Iterable[SceneSample],
             mode: ScoringMode, batch_size: int | None = 8,
             device: torch.device | str = "cpu",
             protocol: Protocol | str = Protocol.OURS) -> SegmentationScores:
    """Score a model on labelled scenes.

    Args:
        model: The network (put in eval mode on ``device``).
        config: Its configuration (class names, ignored class).
        samples: The scenes (e.g. a dataset with views).
        mode: Which logits to score.
        batch_size: Patches per forward pass (None: the device's default).
        device: Where the model runs.
        protocol: ``ours`` or ``official`` (:class:`Protocol`).

    Returns:
        mIoU, per-class IoU, pixel accuracy and the confusion matrix.

    """
    protocol = Protocol(protocol)
    official = protocol is Protocol.OFFICIAL
    model.to(device).eval()
    batch_size = batch_size or default_batch_size(device)
    confusion = ConfusionMatrix(config.num_classes,
                                None if official else config.ignore_index).to(device)
    update_confusion(confusion, model, (s.to(device) for s in samples), mode, batch_size,
                     protocol)
    return scores(confusion, config.class_names, config.ignore_index, official=official)


def evaluate_checkpoint(checkpoint: str | os.PathLike, data: DataSettings,
                        split: Split | str = Split.TEST,
                        mode: PredictMode | str = PredictMode.GLNET,
                        skip_threshold: float | None = None, batch_size: int | None = None,
                        device: str = "auto", precision: Precision | str = Precision.AUTO,
                        progress: bool | None = None, protocol: Protocol | str = Protocol.OURS
                        ) -> SegmentationScores:
    """Score a checkpoint on a labelled dataset (``glnet-geo evaluate``).

    Args:
        checkpoint: A glnet-geo checkpoint.
        data: Which dataset.
        split: Which part of it (custom data: all of it).
        mode: ``glnet`` (the checkpoint's own mode), ``global``, ``local``
            or ``coarse-to-fine``, as in ``glnet-geo predict``.
        skip_threshold: Skip the local branch where G is this confident, as
            ``glnet-geo predict --skip-threshold``.
        batch_size: Patches per forward pass (default: the device's).
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
        precision: What the network computes in, as ``glnet-geo predict
            --precision``.
        progress: Show a progress bar (default: only on a terminal).
        protocol: ``ours`` or ``official`` (the official GLNet evaluator's
            prediction and scoring, to compare with the paper).

    Raises:
        CheckpointError: Not a glnet-geo checkpoint.
        InputError: Missing data, labels with classes the checkpoint lacks,
            a mode its stage cannot run, or a precision the device cannot run.

    """
    from tqdm.auto import tqdm

    try:
        protocol = Protocol(protocol)
    except ValueError:
        raise InputError(f"unknown protocol {protocol!r}; expected ours or official") from None
    torch_device = resolve_device(device)
    loaded = prepare_checkpoint(checkpoint, torch_device, resolve_precision(precision,
                                                                            torch_device))
    scoring = ScoringMode.from_predict_mode(loaded.config, mode, skip_threshold)
    scenes = open_evaluation_data(data, loaded.config, split, checkpoint=os.fspath(checkpoint))
    bar = tqdm(scenes, desc="evaluate", unit="scene", leave=False,
               disable=None if progress is None else not progress)
    if protocol is Protocol.OFFICIAL and (scoring.coarse_to_fine or scoring.skip_threshold):
        raise InputError(OFFICIAL_PLAIN_ONLY)
    return evaluate(loaded.model, loaded.config, bar, scoring, batch_size, torch_device,
                    protocol)
