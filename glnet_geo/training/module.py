"""The Lightning module that trains one stage of GLNet (Algorithm 1 of the paper).

Optimisation is manual: one optimizer step per batch of scenes, with the
gradients of the scenes (and, in stage 2, of each sub-batch of patches)
accumulated in between, as the official code does:

- stage 1 (``GLOBAL``): G on the batch of global views; focal loss on G's
  logits against the labels at a quarter of the global size.
- stage 2 (``GLOBAL_TO_LOCAL``): G frozen; per scene and per sub-batch of
  patches, ``focal(L's logits) + focal(aggregated logits) + lambda * fmreg``,
  backpropagated at once (only the sub-batch's activations are held).
- stage 3 (``LOCAL_TO_GLOBAL``): L frozen, the frozen stage-1 copy of G
  feeding L; per scene, ``focal(G's logits) + focal(aggregated logits)``.

With ``coarse_to_fine``, stages 2 and 3 use only the patches around the
labels' foreground regions (:mod:`glnet_geo.coarse_to_fine`), so L sees
class-balanced crops and G<->L merges the maps of the patches that coarse-to-fine
prediction refines; scenes without foreground are left out.

By default the loss of every scene (or sub-batch) is divided by their number,
so a step follows the mean loss over the batch (:attr:`LossReduction.MEAN`).
The official code sums the sub-batch losses instead (:attr:`LossReduction.SUM`):
with Adam's coupled weight decay (5e-4), the mean makes the decay about as
many times stronger relative to the data term as a step has sub-batches
(36 for 6 DeepGlobe scenes of 6 sub-batches each in stage 2). In stage 3 the
official code runs G once on the batch of scenes (its batch norm sees the
batch) and sums the sub-batch losses of the aggregation; by default
(:attr:`GlobalPass.SCENE`) G runs once per scene and the aggregated loss of a
scene is its mean over all its patches, which the sum reduction scales by the
scene's number of sub-batches. :attr:`GlobalPass.BATCH` does as the official
code: L (frozen) runs on every scene first, then G once on the batch of global
views with their merged local maps.

By default the learning rates decay over
the stage's steps as in the official code: ``lr * (1 - step / steps) ** 0.9``
(its ``poly`` schedule); the short from-scratch recipes of the demo and the
benchmarks keep them constant (:attr:`LRSchedule.CONSTANT`). Validation
predicts each scene whole in the stage's mode
(:mod:`glnet_geo.training.evaluation`) and reports mIoU, pixel accuracy and
per-class IoU from one confusion matrix.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

import lightning as L
import torch
from torch import Tensor
from torch.optim.lr_scheduler import PolynomialLR

from glnet_geo.checkpoint import ModelConfig
from glnet_geo.classes import NO_CLASS
from glnet_geo.coarse_to_fine import BACKGROUND, refined_patches
from glnet_geo.datasets.sample import SceneSample
from glnet_geo.metrics import ConfusionMatrix, scores
from glnet_geo.models import GLNet, GLNetMode
from glnet_geo.models.fpn import FeatureMaps
from glnet_geo.models.losses import DEFAULT_GAMMA, focal_loss
from glnet_geo.models.sharing import LocalMapMerger, crop_resize
from glnet_geo.models.stages import (
    LR_GLOBAL,
    LR_LOCAL,
    Stage,
    prepare_stage,
    stage_parameter_groups,
)
from glnet_geo.training.evaluation import ScoringMode, update_confusion

#: Power of the official code's ``poly`` learning-rate decay.
POLY_POWER = 0.9


class LossReduction(StrEnum):
    """How the losses of the scenes and sub-batches of a step add up (see the module docstring)."""

    MEAN = "mean"
    SUM = "sum"


class GlobalPass(StrEnum):
    """How stage 3 runs G: once per scene (ours) or once on the batch of scenes (official)."""

    SCENE = "scene"
    BATCH = "batch"


class LRSchedule(StrEnum):
    """How the learning rates change over a stage's steps."""

    #: ``lr * (1 - step / steps) ** 0.9``, the official code's schedule.
    POLY = "poly"
    #: The starting rates throughout.
    CONSTANT = "constant"


@dataclass
class LossSettings:
    """The losses and the optimizer of a stage.

    Attributes:
        gamma: Focal loss focusing parameter (6 in the paper).
        fmreg_weight: Weight lambda of the feature-map regulariser (0.15).
        lr_global: Adam learning rate of G (1e-4).
        lr_local: Adam learning rate of L (2e-5).
        weight_decay: Adam L2 penalty (5e-4 in the official code).
        sub_batch_size: Patches per forward/backward pass.
        lr_schedule: How the learning rates change over the stage.
        reduction: ``mean`` (ours) or ``sum`` (the official code's) of the
            losses of a step's scenes and sub-batches.
        global_pass: Stage 3: G once per scene (``scene``, ours) or once on
            the batch of scenes (``batch``, the official code's).

    """

    gamma: float = DEFAULT_GAMMA
    fmreg_weight: float = 0.15
    lr_global: float = LR_GLOBAL
    lr_local: float = LR_LOCAL
    weight_decay: float = 5e-4
    sub_batch_size: int = 6
    lr_schedule: LRSchedule = LRSchedule.POLY
    reduction: LossReduction = LossReduction.MEAN
    global_pass: GlobalPass = GlobalPass.SCENE

    def __post_init__(self) -> None:
        self.lr_schedule = LRSchedule(self.lr_schedule)
        self.reduction = LossReduction(self.reduction)
        self.global_pass = GlobalPass(self.global_pass)

    def share(self, count: int) -> float:
        """Return the weight of one of ``count`` losses that make a step."""
        return 1.0 / count if self.reduction is LossReduction.MEAN else 1.0


def training_mode(stage: Stage) -> GLNetMode:
    """Return the mode a stage trains in (and validates in)."""
    return stage.mode


class GLNetModule(L.LightningModule):
    """Train one stage of a GLNet.

    Args:
        config: The model's configuration (``config.stage`` is ignored; the
            stage trained is ``stage``).
        stage: The stage to train.
        losses: Loss and optimizer settings.
        mode: The mode to train in, if not the stage's own: ``LOCAL`` or
            ``AGGREGATE`` in stage 2 give the ablations of the paper's Table 2
            (local branch alone; aggregation without sharing).
        model: Start from this network (default: a new one from ``config``).
        coarse_to_fine: In stages 2 and 3, train only on the patches that
            touch a foreground region of the labels (class 0 is the
            background).

    """

    def __init__(self, config: ModelConfig, stage: Stage | str, losses: LossSettings | None = None,
                 mode: GLNetMode | str | None = None, model: GLNet | None = None,
                 coarse_to_fine: bool = False) -> None:
        super().__init__()
        self.automatic_optimization = False
        self.stage = Stage(stage)
        self.config = config
        self.losses = losses or LossSettings()
        self.mode = GLNetMode(mode) if mode is not None else training_mode(self.stage)
        self.coarse_to_fine = coarse_to_fine
        if model is None:
            model = ModelConfig.from_dict(config.to_dict() | {"stage": self.stage.value}
                                          ).build_model()
        self.model = model
        prepare_stage(self.model, self.stage)
        self.val_confusion = ConfusionMatrix(config.num_classes, config.ignore_index)
        self.save_hyperparameters({"config": config.to_dict(), "stage": self.stage.value,
                                   "losses": asdict(self.losses) | {
                                       "lr_schedule": self.losses.lr_schedule.value,
                                       "reduction": self.losses.reduction.value,
                                       "global_pass": self.losses.global_pass.value},
                                   "mode": self.mode.value,
                                   "coarse_to_fine": coarse_to_fine})

    def _targets(self, labels: torch.Tensor) -> torch.Tensor:
        labels = labels.long()
        if self.config.ignore_index is not None:
            labels = labels.masked_fill(labels == self.config.ignore_index, NO_CLASS)
        return labels

    def focal(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Focal loss of ``logits`` against ``labels`` (unlabelled and ignored pixels skipped)."""
        return focal_loss(logits.float(), self._targets(labels), self.losses.gamma, NO_CLASS)

    def configure_optimizers(self) -> dict[str, Any]:
        """Adam over the parameters the stage trains, with the stage's schedule.

        Adam starts from the paper's learning rates. The poly schedule spans
        the stage's steps; a run without a known length keeps the rates constant.
        """
        groups = stage_parameter_groups(self.model, self.stage, self.losses.lr_global,
                                        self.losses.lr_local)
        optimizer = torch.optim.Adam(groups, weight_decay=self.losses.weight_decay)
        steps = self.trainer.estimated_stepping_batches
        if self.losses.lr_schedule is LRSchedule.CONSTANT or not math.isfinite(steps):
            return {"optimizer": optimizer}
        schedule = PolynomialLR(optimizer, total_iters=int(steps), power=POLY_POWER)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule,
                                                         "interval": "step"}}

    def on_fit_start(self) -> None:
        """Freeze what the stage does not train (again, after any checkpoint restore)."""
        prepare_stage(self.model, self.stage)
        self.model.train()

    def training_step(self, batch: list[SceneSample], batch_index: int) -> torch.Tensor:
        """One optimizer step over a batch of scenes (gradients accumulated)."""
        optimizer = self.optimizers()
        optimizer.zero_grad()
        if self.stage is Stage.GLOBAL:
            loss = self._global_step(batch)
        elif self.stage is Stage.GLOBAL_TO_LOCAL:
            loss = self._local_step(batch)
        else:
            loss = self._bidirectional_step(batch)
        optimizer.step()
        schedule = self.lr_schedulers()
        if schedule is not None:
            schedule.step()
        self.log("train_loss", loss, prog_bar=True, batch_size=len(batch))
        return loss

    def _global_step(self, batch: list[SceneSample]) -> torch.Tensor:
        images = torch.stack([s.global_image for s in batch])
        labels = torch.stack([s.global_label for s in batch])
        loss = self.focal(self.model.global_branch(images).logits, labels)
        self.manual_backward(loss)
        return loss.detach()

    def refined(self, sample: SceneSample) -> SceneSample:
        """Return the scene with only the patches around its labels' foreground regions.

        A single refined patch takes its grid neighbour along (the next, or
        the one before the last), so that batch norm never trains on one
        patch alone.
        """
        label = sample.label.cpu().numpy()
        foreground = (label != BACKGROUND) & (label != NO_CLASS)
        if self.config.ignore_index is not None:
            foreground &= label != self.config.ignore_index
        index = refined_patches(foreground, sample.windows)
        if len(index) == 1 and sample.num_patches > 1:
            (only,) = index
            index = sorted([only, only + 1 if only + 1 < sample.num_patches else only - 1])
        return sample.with_patches(index)

    def _local_step(self, batch: list[SceneSample]) -> torch.Tensor:
        if self.coarse_to_fine:
            batch = [self.refined(sample) for sample in batch]
        parts = [(s, i) for s in batch for i in s.sub_batches(self.losses.sub_batch_size)]
        total = torch.zeros((), device=self.device)
        for sample, index in parts:
            out = self.model(sample.global_image[None], sample.patches(index),
                             sample.boxes[index], mode=self.mode, scene_shape=sample.scene_shape)
            labels = sample.patch_labels(index)
            loss = self.focal(out.logits, labels)
            if self.mode is not GLNetMode.LOCAL:
                loss = loss + self.focal(out.local_logits, labels)
                loss = loss + self.losses.fmreg_weight * out.fmreg
            share = self.losses.share(len(parts))
            self.manual_backward(loss * share)
            total += loss.detach() * share
        return total

    def _bidirectional_step(self, batch: list[SceneSample]) -> torch.Tensor:
        if self.coarse_to_fine:
            batch = [s for s in map(self.refined, batch) if s.num_patches]
        if self.losses.global_pass is GlobalPass.BATCH:
            return self._bidirectional_batch_step(batch)
        total = torch.zeros((), device=self.device)
        for sample in batch:
            out = self.model(sample.global_image[None], sample.patches(), sample.boxes,
                             mode=GLNetMode.BIDIRECTIONAL, scene_shape=sample.scene_shape)
            global_loss = self.focal(out.global_logits, sample.global_label[None])
            local_loss = self.focal(out.logits, sample.patch_labels())
            if self.losses.reduction is LossReduction.SUM:  # G's loss on the batch at once
                loss = global_loss / len(batch) + local_loss * len(
                    sample.sub_batches(self.losses.sub_batch_size))
            else:
                loss = (global_loss + local_loss) / len(batch)
            self.manual_backward(loss)
            total += loss.detach()
        return total

    def _merged_local_maps(self, sample: SceneSample) -> tuple[FeatureMaps, list[Tensor]]:
        """Run the frozen L, fed by the frozen stage-1 G, on a scene in sub-batches.

        Returns:
            L's maps merged at G's size, and L's ps3 of each sub-batch.

        """
        model = self.model
        boxes = [tuple(b) for b in sample.boxes.detach().cpu().double().tolist()]
        with torch.no_grad():
            fixed = model.fixed_global_branch(sample.global_image[None]).maps
            merger = LocalMapMerger(fixed)
            ps3 = []
            for index in sample.sub_batches(self.losses.sub_batch_size):
                local = model.local_branch.forward_with_crops(sample.patches(index), fixed,
                                                              boxes[index])
                merger.add(local.maps, boxes[index])
                ps3.append(local.ps3)
        return merger.average(boxes, sample.scene_shape), ps3

    def _bidirectional_batch_step(self, batch: list[SceneSample]) -> torch.Tensor:
        """Stage 3 as the official code: G once on the batch of scenes, their merged L maps."""
        if not batch:
            return torch.zeros((), device=self.device)
        merged, local_ps3 = zip(*(self._merged_local_maps(s) for s in batch), strict=True)
        shared = FeatureMaps.from_tensors([torch.cat(maps) for maps in
                                           zip(*(m.tensors() for m in merged), strict=True)])
        images = torch.stack([s.global_image for s in batch])
        out = self.model.global_branch(images, shared)
        loss = self.focal(out.logits, torch.stack([s.global_label for s in batch]))
        parts = [(i, index, ps3) for i, s in enumerate(batch)
                 for index, ps3 in zip(s.sub_batches(self.losses.sub_batch_size), local_ps3[i],
                                       strict=True)]
        share = self.losses.share(len(parts))
        for i, index, ps3 in parts:
            boxes = [tuple(b) for b in batch[i].boxes[index].detach().cpu().double().tolist()]
            global_ps3 = crop_resize(out.ps3[i:i + 1], boxes, ps3.shape[-2:])
            logits = self.model.aggregation(ps3, global_ps3)
            loss = loss + share * self.focal(logits, batch[i].patch_labels(index))
        self.manual_backward(loss)
        return loss.detach()

    def validation_step(self, batch: list[SceneSample], batch_index: int) -> None:
        """Predict each scene whole and add it to the confusion matrix."""
        update_confusion(self.val_confusion, self.model, batch, ScoringMode(self.mode),
                         self.losses.sub_batch_size)

    def on_validation_epoch_end(self) -> None:
        """Log mIoU, pixel accuracy and per-class IoU, then reset the matrix."""
        result = scores(self.val_confusion, self.config.class_names)
        self.log("val_miou", result.miou, sync_dist=False)
        self.log("val_pixel_accuracy", result.pixel_accuracy, sync_dist=False)
        for name, value in zip(self.config.class_names, result.iou, strict=True):
            if value == value:  # not NaN
                self.log(f"val_iou/{name}", float(value), sync_dist=False)
        self.val_confusion.reset()

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Record the stage trained, so ``--resume`` knows where to go on."""
        checkpoint["glnet_stage"] = self.stage.value
