"""Scoring GLNet on labelled scenes: training's validation and ``glnet-geo evaluate``.

A scene already in memory (:class:`~glnet_geo.datasets.sample.SceneSample`)
is predicted the way :mod:`glnet_geo.inference` predicts a scene read from a
raster: G once, the patches in sub-batches, each patch's logits upsampled
bilinearly to the patch size, turned into probabilities and blended where
patches overlap with :func:`glnet_geo.inference.blend_weights`. The classes
then go into one :class:`~glnet_geo.metrics.ConfusionMatrix`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from glnet_geo.checkpoint import ModelConfig, load_checkpoint
from glnet_geo.datasets.sample import SceneSample
from glnet_geo.datasets.split import Split
from glnet_geo.inference import PredictMode, SceneSettings, blend_weights, resolve_device
from glnet_geo.metrics import ConfusionMatrix, SegmentationScores, scores
from glnet_geo.models import GLNet, GLNetMode
from glnet_geo.training.data import DataSettings, open_evaluation_data


@dataclass(frozen=True)
class ScoringMode:
    """Which logits are scored.

    Attributes:
        network_mode: The mode GLNet runs in.
        local_logits: Score L's own logits instead of the mode's final ones.

    """

    network_mode: GLNetMode
    local_logits: bool = False

    @classmethod
    def from_predict_mode(cls, config: ModelConfig, mode: PredictMode | str) -> ScoringMode:
        """Score as ``glnet-geo predict --mode`` predicts, for a checkpoint.

        Raises:
            InputError: A mode the checkpoint's stage cannot run.

        """
        settings = SceneSettings.from_config(config, mode)
        return cls(settings.network_mode, settings.mode is PredictMode.LOCAL)


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
    height, width = sample.scene_shape
    global_image = sample.global_image[None]
    with torch.inference_mode():
        if mode.network_mode is GLNetMode.GLOBAL:
            logits = model(global_image, None, None, mode=GLNetMode.GLOBAL).logits
            return F.interpolate(logits, size=(height, width), mode="bilinear",
                                 align_corners=False).softmax(1)[0]
        patch = sample.patch_size
        weight = blend_weights(patch).to(sample.image.device)
        total = torch.zeros((model.num_classes, height, width), device=sample.image.device)
        weights = torch.zeros((height, width), device=sample.image.device)
        batches = (sample.patches(index) for index in sample.sub_batches(batch_size))
        for part in model.iter_scene(global_image, sample.boxes, batches,
                                     mode=mode.network_mode, scene_shape=(height, width)):
            logits = part.local_logits if mode.local_logits else part.logits
            probs = F.interpolate(logits, size=(patch, patch), mode="bilinear",
                                  align_corners=False).softmax(1) * weight
            for p, window in zip(probs, sample.windows[part.index], strict=True):
                rows, cols = window.toslices()
                total[:, rows, cols] += p
                weights[rows, cols] += weight
        return total / weights


def update_confusion(confusion: ConfusionMatrix, model: GLNet, samples: Iterable[SceneSample],
                     mode: ScoringMode, batch_size: int = 8) -> None:
    """Predict each scene and add its pixels to ``confusion``."""
    for sample in samples:
        classes = scene_probabilities(model, sample, mode, batch_size).max(0).indices
        confusion.update(classes, sample.label.to(classes.device))


def evaluate(model: GLNet, config: ModelConfig, samples: Iterable[SceneSample],
             mode: ScoringMode, batch_size: int = 8,
             device: torch.device | str = "cpu") -> SegmentationScores:
    """Score a model on labelled scenes.

    Args:
        model: The network (put in eval mode on ``device``).
        config: Its configuration (class names, ignored class).
        samples: The scenes (e.g. a dataset with views).
        mode: Which logits to score.
        batch_size: Patches per forward pass.
        device: Where the model runs.

    Returns:
        mIoU, per-class IoU, pixel accuracy and the confusion matrix.

    """
    model.to(device).eval()
    confusion = ConfusionMatrix(config.num_classes, config.ignore_index).to(device)
    update_confusion(confusion, model, (s.to(device) for s in samples), mode, batch_size)
    return scores(confusion, config.class_names)


def evaluate_checkpoint(checkpoint: str | os.PathLike, data: DataSettings,
                        split: Split | str = Split.TEST,
                        mode: PredictMode | str = PredictMode.GLNET, batch_size: int = 8,
                        device: str = "auto", progress: bool | None = None
                        ) -> SegmentationScores:
    """Score a checkpoint on a labelled dataset (``glnet-geo evaluate``).

    Args:
        checkpoint: A glnet-geo checkpoint.
        data: Which dataset.
        split: Which part of it (custom data: all of it).
        mode: ``glnet`` (the checkpoint's own mode), ``global`` or ``local``,
            as in ``glnet-geo predict``.
        batch_size: Patches per forward pass.
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
        progress: Show a progress bar (default: only on a terminal).

    Raises:
        CheckpointError: Not a glnet-geo checkpoint.
        InputError: Missing data, labels with classes the checkpoint lacks,
            or a mode its stage cannot run.

    """
    from tqdm.auto import tqdm

    torch_device = resolve_device(device)
    loaded = load_checkpoint(checkpoint, device=torch_device)
    scoring = ScoringMode.from_predict_mode(loaded.config, mode)
    scenes = open_evaluation_data(data, loaded.config, split, checkpoint=os.fspath(checkpoint))
    bar = tqdm(scenes, desc="evaluate", unit="scene", leave=False,
               disable=None if progress is None else not progress)
    return evaluate(loaded.model, loaded.config, bar, scoring, batch_size, torch_device)
