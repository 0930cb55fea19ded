"""How to train: which stages, the network's sizes, the schedule, the hardware, the losses.

:class:`TrainSettings` is what ``glnet-geo train`` builds from its options
and what ``run.yaml`` records (:mod:`glnet_geo.training.run_config`);
:func:`glnet_geo.training.trainer.train` runs it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from glnet_geo.errors import InputError
from glnet_geo.models.stages import Stage
from glnet_geo.training.module import LossSettings

#: Epochs of each stage in the official code (its training scripts): the default schedule.
OFFICIAL_EPOCHS = {Stage.GLOBAL: 120, Stage.GLOBAL_TO_LOCAL: 50, Stage.LOCAL_TO_GLOBAL: 120}


class StagePlan(StrEnum):
    """What ``--stage`` asks for: one stage, or all three in order."""

    GLOBAL = "global"
    GLOBAL_TO_LOCAL = "global-to-local"
    LOCAL_TO_GLOBAL = "local-to-global"
    ALL = "all"

    @property
    def stages(self) -> list[Stage]:
        """The stages to run, in order."""
        if self is StagePlan.ALL:
            return list(Stage)
        return [Stage(self.value)]


@dataclass
class TrainSettings:
    """How to train.

    Attributes:
        plan: Which stages.
        backbone: ``resnet18``, ``resnet34`` or ``resnet50``.
        weights: Encoder initialisation of a new model: None, ``imagenet``,
            ``torchgeo:<WeightsEnum>`` or a torchvision ResNet state_dict path
            (:class:`~glnet_geo.models.encoders.ResNetEncoder`).
        init: A glnet-geo checkpoint to start from (the previous stage's).
        resume: A Lightning checkpoint of this run to continue from.
        global_size: Side of the global view (508 in the paper).
        patch_size: Side of the patches (508).
        min_overlap: Minimum patch overlap (50).
        batch_size: Scenes per optimizer step (6).
        num_workers: Data loader workers.
        max_epochs: Epochs per stage: one count for every stage, or three
            (stages 1, 2, 3, e.g. ``(120, 50, 120)``); default (with no
            ``max_steps``) the official code's :data:`OFFICIAL_EPOCHS`.
        max_steps: Optimizer steps per stage.
        accelerator: ``auto``, ``cpu``, ``gpu``.
        devices: Devices per node (``auto`` or a count).
        num_nodes: Number of nodes.
        strategy: Lightning strategy (``auto``, ``ddp``).
        precision: Lightning precision; default ``16-mixed`` on GPUs,
            ``32-true`` otherwise.
        seed: Seed of weights, sampling and augmentation.
        run_dir: Where Lightning checkpoints and logs go (default: next to
            the output, ``<name>.run``).
        checkpoint_every: Save a Lightning checkpoint every this many steps.
        log_every: Log the loss every this many steps.
        augment: Random flips and 90-degree rotations of training scenes.
        losses: Losses and learning rates.
        progress: Report progress: Lightning's progress bar on a terminal,
            plain lines elsewhere (:mod:`glnet_geo.training.progress`).
        coarse_to_fine: Train stages 2 and 3 on the patches around the
            labels' foreground only (class 0 is the background); the
            checkpoint then predicts coarse-to-fine.
        given: Names of the fields the user set explicitly (the command
            line's options); with ``init`` or ``resume`` those that fix the
            network (backbone, view sizes) must match the checkpoint's.

    """

    plan: StagePlan = StagePlan.ALL
    backbone: str = "resnet50"
    weights: str | None = None
    init: str | None = None
    resume: str | None = None
    global_size: int = 508
    patch_size: int = 508
    min_overlap: int = 50
    batch_size: int = 6
    num_workers: int = 0
    max_epochs: int | tuple[int, ...] | list[int] | None = None
    max_steps: int | None = None
    accelerator: str = "auto"
    devices: int | str = "auto"
    num_nodes: int = 1
    strategy: str = "auto"
    precision: str | None = None
    seed: int = 0
    run_dir: str | None = None
    checkpoint_every: int = 500
    log_every: int = 10
    augment: bool = True
    losses: LossSettings = field(default_factory=LossSettings)
    progress: bool = True
    coarse_to_fine: bool = False
    given: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        self.plan = StagePlan(self.plan)
        if isinstance(self.max_epochs, list | tuple):
            if len(self.max_epochs) == 1:
                self.max_epochs = self.max_epochs[0]
            elif len(self.max_epochs) != len(Stage):
                raise InputError(f"--epochs {','.join(map(str, self.max_epochs))}: give one "
                                 "count for every stage or three (stages 1, 2, 3), e.g. "
                                 "--epochs 120,50,120")
            else:
                self.max_epochs = tuple(self.max_epochs)
        if self.min_overlap >= self.patch_size or self.patch_size < 32 or self.global_size < 32:
            raise InputError(f"patch size {self.patch_size}, global size {self.global_size}, "
                             f"min overlap {self.min_overlap}: expected sizes of at least 32 px "
                             "and an overlap below the patch size")


def stage_epochs(settings: TrainSettings, stage: Stage) -> int | None:
    """Return the epochs ``stage`` runs for (None: as many as ``max_steps`` takes)."""
    if settings.max_epochs is None:
        return None if settings.max_steps is not None else OFFICIAL_EPOCHS[stage]
    if isinstance(settings.max_epochs, tuple):
        return settings.max_epochs[list(Stage).index(stage)]
    return settings.max_epochs
