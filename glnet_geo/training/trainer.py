"""Running the stages of Algorithm 1 with Lightning, ending in one glnet-geo checkpoint.

:func:`train` opens the data, builds (or loads) the model and runs the asked
stages one after another, each with its own Lightning ``Trainer``, in a run
directory next to the output::

    model.run/<stage>/last.ckpt        Lightning checkpoint (for --resume), written every
                                       ``checkpoint_every`` steps and when training fails
    model.run/<stage>.pt               the model at the end of each stage but the last
                                       (a glnet-geo checkpoint, for --init)
    model.run/logs/<stage>/version_N/  CSV and TensorBoard logs
    model.run/run.yaml                 the whole run configuration (data, classes, every
                                       option, seed, versions), also in the checkpoint;
                                       ``glnet-geo train --config`` repeats the run

The final output is the self-describing checkpoint
(:func:`glnet_geo.checkpoint.save_checkpoint`) at the last stage reached.
Several GPUs or nodes train through Lightning's DDP strategy
(``devices``/``num_nodes``/``strategy``); on a GPU, training runs in mixed
precision unless told otherwise.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from torch.utils.data import DataLoader, Dataset

from glnet_geo.checkpoint import Checkpoint, ModelConfig, load_checkpoint, save_checkpoint
from glnet_geo.datasets.sample import collate_scenes
from glnet_geo.errors import CheckpointError, InputError, OutputError, OutputExistsError
from glnet_geo.io.writer import check_output
from glnet_geo.models import GLNet
from glnet_geo.models.stages import Stage
from glnet_geo.training.data import DataSettings, GLNetDataModule, TrainingData, open_training_data
from glnet_geo.training.module import GLNetModule
from glnet_geo.training.progress import TextProgress, is_terminal
from glnet_geo.training.settings import TrainSettings, stage_epochs

log = logging.getLogger(__name__)

#: Name of each stage's resumable Lightning checkpoint (``<run dir>/<stage>/last.ckpt``).
LAST = "last"
#: The run's configuration in the run directory (:mod:`glnet_geo.training.run_config`).
RUN_FILE = "run.yaml"

def default_run_dir(output: str | os.PathLike) -> Path:
    """``model.run`` next to ``model.ckpt``."""
    output = Path(output)
    return output.with_name(output.stem + ".run")


@dataclass
class ResumePoint:
    """Where a Lightning checkpoint of a glnet-geo run stopped.

    Attributes:
        stage: The stage it was training.
        config: The model's configuration.

    """

    stage: Stage
    config: ModelConfig


def read_resume_point(path: str | os.PathLike) -> ResumePoint:
    """Read the stage and model configuration of a run's Lightning checkpoint.

    Raises:
        CheckpointError: Missing file or not a glnet-geo training checkpoint.

    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"--resume {path} does not exist; give a last.ckpt from the run "
                              "directory of an earlier 'glnet-geo train'")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # any unreadable file is the same user error
        raise CheckpointError(f"--resume {path} is not a Lightning checkpoint of glnet-geo "
                              f"({type(exc).__name__}); give a last.ckpt from a run "
                              "directory") from None
    config = payload.get("hyper_parameters", {}).get("config")
    if "glnet_stage" not in payload or config is None:
        raise CheckpointError(f"--resume {path} was not written by 'glnet-geo train' (no stage "
                              "recorded); give a last.ckpt from its run directory")
    return ResumePoint(Stage(payload["glnet_stage"]), ModelConfig.from_dict(config))


def _precision(settings: TrainSettings) -> str:
    if settings.precision:
        return settings.precision
    gpu = settings.accelerator in ("gpu", "cuda") or (
        settings.accelerator == "auto" and torch.cuda.is_available())
    return "16-mixed" if gpu else "32-true"


def next_log_version(stage_logs: Path) -> int:
    """Return the first ``version_<N>`` not yet in a stage's log folder."""
    taken = {int(p.name.split("_", 1)[1]) for p in stage_logs.glob("version_*")
             if p.name.split("_", 1)[1].isdigit()}
    return next(n for n in range(len(taken) + 1) if n not in taken)


def build_trainer(settings: TrainSettings, run_dir: Path, stage: Stage,
                  validate: bool = True, position: int = 1, total: int = 1) -> L.Trainer:
    """Build the Lightning ``Trainer`` of one stage: checkpoints, logs, devices, precision.

    With ``settings.progress``, the stage shows Lightning's progress bar on a
    terminal and, elsewhere (a pipe, a log file), plain lines
    (:class:`~glnet_geo.training.progress.TextProgress`; ``position`` of
    ``total`` stages names it in its heading).
    """
    # Expected here, not worth a user's attention: manual optimization steps once per batch
    # (the checkpoint after a step is the state to resume from), frozen branches stay in
    # eval mode on purpose, short runs log less often than log_every.
    for message in ("Using ModelCheckpoint with manual optimization", "Found .* module",
                    "The number of training batches", ".*LeafSpec.* is deprecated"):
        warnings.filterwarnings("ignore", message=message)
    stage_dir = run_dir / stage.value
    # One file, last.ckpt, rewritten every checkpoint_every steps and when training fails.
    checkpoints = ModelCheckpoint(dirpath=stage_dir, filename=LAST, save_top_k=1,
                                  every_n_train_steps=settings.checkpoint_every,
                                  save_on_exception=True, enable_version_counter=False)
    # Both loggers in one folder, logs/<stage>/version_<N>: each logger alone would pick the
    # next free version, the second one seeing the first's folder.
    version = next_log_version(run_dir / "logs" / stage.value)
    loggers = [CSVLogger(run_dir / "logs", name=stage.value, version=version),
               TensorBoardLogger(run_dir / "logs", name=stage.value, version=version,
                                 default_hp_metric=False)]
    strategy = settings.strategy
    if strategy == "ddp":
        # Each stage leaves some parameters of the parts it trains without a gradient (the
        # plain or the doubled FPN layers, the aggregation in stage 1): DDP must expect it.
        strategy = "ddp_find_unused_parameters_true"
    bar = settings.progress and is_terminal()
    callbacks: list[L.Callback] = [checkpoints]
    if settings.progress and not bar:
        callbacks.append(TextProgress(stage, position, total, every=settings.log_every))
    return L.Trainer(
        default_root_dir=run_dir, accelerator=settings.accelerator, devices=settings.devices,
        num_nodes=settings.num_nodes, strategy=strategy,
        precision=_precision(settings), max_epochs=stage_epochs(settings, stage),
        max_steps=-1 if settings.max_steps is None else settings.max_steps,
        callbacks=callbacks, logger=loggers, log_every_n_steps=settings.log_every,
        num_sanity_val_steps=0, limit_val_batches=None if validate else 0,
        enable_progress_bar=bar, enable_model_summary=False,
        deterministic=False)


def _check_classes(config: ModelConfig, data: TrainingData, source: str) -> None:
    """Check that the data's classes and bands are the model's."""
    names = data.classes.names
    if len(names) > config.num_classes:
        raise InputError(f"the data has {len(names)} classes ({', '.join(names)}) but {source} "
                         f"has {config.num_classes} ({', '.join(config.class_names)}); start a "
                         "new model or use data with the checkpoint's classes")
    if list(names) != list(config.class_names):
        raise InputError(f"the data's classes ({', '.join(names)}) are not those of {source} "
                         f"({', '.join(config.class_names)}); use data with the same classes")
    if data.in_channels != config.in_channels:
        raise InputError(f"the images have {data.in_channels} bands but {source} takes "
                         f"{config.in_channels}; use imagery with the same bands")


#: Settings that fix the network: a run started from a checkpoint takes the checkpoint's.
NETWORK_SETTINGS = ("backbone", "global_size", "patch_size", "min_overlap")


def check_same_network(config: ModelConfig, settings: TrainSettings, option: str,
                       path: str | os.PathLike) -> None:
    """Refuse network settings given explicitly that differ from the checkpoint's.

    A run from ``--init`` or ``--resume`` continues the checkpoint's network,
    so ``--backbone resnet34`` with a ResNet-18 checkpoint would otherwise be
    silently ignored.

    Raises:
        InputError: A setting in ``settings.given`` differs from ``config``'s.

    """
    for name in NETWORK_SETTINGS:
        wanted, trained = getattr(settings, name), getattr(config, name)
        if name in settings.given and wanted != trained:
            flag = "--" + name.replace("_", "-")
            raise InputError(f"{flag} {wanted} but {option} {path} was trained with {flag} "
                             f"{trained}; leave out {flag} (the checkpoint's is used) or start "
                             f"a new run without {option}")


def _check_start(stage: Stage, init: Checkpoint | None, settings: TrainSettings) -> None:
    """Check that a run starting at ``stage`` starts from the stage before it (Algorithm 1)."""
    if stage is Stage.GLOBAL or settings.resume:
        return
    order = list(Stage)
    needed = order[order.index(stage) - 1]
    if init is None:
        raise InputError(f"--stage {stage.value} continues a model trained to stage "
                         f"'{needed.value}'; pass it with --init CHECKPOINT, or use --stage all")
    if order.index(init.config.stage) < order.index(needed):
        raise InputError(f"--init {settings.init} reached stage '{init.config.stage.value}' but "
                         f"--stage {stage.value} needs a model trained to '{needed.value}'; "
                         "train the missing stage first")


def _starting_point(settings: TrainSettings, data: TrainingData, init: Checkpoint | None,
                    resume: ResumePoint | None) -> tuple[ModelConfig, GLNet | None]:
    """Choose the configuration and network to start from (None: Lightning restores it)."""
    if init is not None:
        _check_classes(init.config, data, settings.init)
        return init.config, init.model.train()
    if resume is not None:
        _check_classes(resume.config, data, settings.resume)
        return resume.config, None
    config = ModelConfig(
        class_names=list(data.classes.names), class_colors=list(data.classes.colors),
        ignore_index=data.classes.ignore_index, backbone=settings.backbone,
        bands=list(range(1, data.in_channels + 1)), normalization=data.normalization,
        global_size=settings.global_size, patch_size=settings.patch_size,
        min_overlap=settings.min_overlap, scene_size=data.scene_size,
        stage=settings.plan.stages[0], imagery=data.imagery)
    if settings.weights is None:
        log.warning("training from random encoders; the paper started from ImageNet weights: "
                    "pass --weights imagenet (or --weights torchgeo:<WeightsEnum>, or a "
                    "torchvision ResNet state_dict)")
    model = GLNet(config.num_classes, config.backbone, config.in_channels,
                  weights=settings.weights)
    return config, model


def fit_steps(module: GLNetModule, data: Dataset, steps: int, batch_size: int) -> float:
    """Train ``module`` for ``steps`` optimizer steps on the CPU, quietly (no logs, no checkpoints).

    For short in-memory runs (the demo, the benchmarks); :func:`train` is the full loop.

    Args:
        module: The stage to train.
        data: Scenes as :class:`~glnet_geo.datasets.sample.SceneSample` (shuffled).
        steps: Optimizer steps.
        batch_size: Scenes per step.

    Returns:
        The seconds ``Trainer.fit`` took.

    """
    loader = DataLoader(data, batch_size=batch_size, shuffle=True, collate_fn=collate_scenes)
    trainer = L.Trainer(max_steps=steps, accelerator="cpu", logger=False,
                        enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, num_sanity_val_steps=0,
                        limit_val_batches=0)
    start = time.perf_counter()
    trainer.fit(module, loader)
    return time.perf_counter() - start


def train(data_settings: DataSettings, settings: TrainSettings, output: str | os.PathLike,
          overwrite: bool = False) -> Path:
    """Train GLNet's stages and write one glnet-geo checkpoint.

    Args:
        data_settings: Which data.
        settings: How to train.
        output: The checkpoint to write (at the last stage reached).
        overwrite: Replace an existing output.

    Returns:
        The checkpoint written.

    Raises:
        InputError: Bad data or settings.
        CheckpointError: A bad ``init`` or ``resume`` checkpoint.
        OutputExistsError: ``output`` exists and ``overwrite`` is false.

    """
    output = Path(output)
    if output.exists() and not overwrite:
        raise OutputExistsError(f"{output} already exists; pass --overwrite to replace it")
    run_dir = Path(settings.run_dir) if settings.run_dir else default_run_dir(output)
    for directory in (output.parent, run_dir):  # before training, not after it
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(f"cannot create {directory} ({exc.strerror}); choose a writable "
                              "location for -o (and --run-dir)") from None
    check_output(output, overwrite=True)  # its directory is writable
    check_output(run_dir / LAST, overwrite=True)  # and so is the run's
    stages = settings.plan.stages
    resume = read_resume_point(settings.resume) if settings.resume else None
    resume_stage = resume.stage if resume is not None else None
    if resume_stage is not None:
        if resume_stage not in stages:
            raise InputError(f"--resume {settings.resume} was training stage "
                             f"'{resume_stage.value}', which --stage {settings.plan.value} does "
                             f"not run; pass --stage {resume_stage.value} or --stage all")
        stages = stages[stages.index(resume_stage):]
    L.seed_everything(settings.seed, workers=True, verbose=False)
    init = load_checkpoint(settings.init) if settings.init else None
    _check_start(stages[0], init, settings)
    earlier = init.config if init is not None else resume.config if resume else None
    if earlier is not None:
        check_same_network(earlier, settings, "--init" if init is not None else "--resume",
                           settings.init or settings.resume)
    sizes = earlier or settings  # views as the model was trained
    data = open_training_data(data_settings, sizes.global_size, sizes.patch_size,
                              sizes.min_overlap, augment=settings.augment)
    config, model = _starting_point(settings, data, init, resume)
    record = _save_run(data_settings, settings, output, data, run_dir)
    datamodule = GLNetDataModule(data, settings.batch_size, settings.num_workers)
    for position, stage in enumerate(stages, start=1):
        module = GLNetModule(config, stage, settings.losses, model=model,
                             coarse_to_fine=settings.coarse_to_fine)
        trainer = build_trainer(settings, run_dir, stage, validate=data.val is not None,
                                position=position, total=len(stages))
        ckpt_path = settings.resume if stage is resume_stage else None
        try:
            trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path,
                        weights_only=True if ckpt_path else None)
        except SystemExit:
            if trainer.interrupted:  # Lightning ends an interrupted fit with sys.exit(1)
                raise KeyboardInterrupt(f"training stage '{stage.value}' stopped") from None
            raise
        model = module.model
        if trainer.is_global_zero:
            reached = dataclasses.replace(config, stage=stage, coarse_to_fine=(
                settings.coarse_to_fine and stage is not Stage.GLOBAL))
            final = stage is stages[-1]
            save_checkpoint(output if final else run_dir / f"{stage.value}.pt", model, reached,
                            overwrite=overwrite or not final, run=record)
    return output


def _save_run(data_settings: DataSettings, settings: TrainSettings, output: Path,
              data: TrainingData, run_dir: Path) -> dict:
    """Write ``run.yaml`` into the run directory (first process only); return its mapping."""
    from lightning.pytorch.utilities import rank_zero_only

    from glnet_geo.training.run_config import RunConfig

    run = RunConfig(data_settings, settings, os.fspath(output))
    classes = {"names": list(data.classes.names), "colors": [list(c) for c in data.classes.colors],
               "ignore_index": data.classes.ignore_index, "scene_size": data.scene_size}
    if rank_zero_only.rank == 0:
        run_dir.mkdir(parents=True, exist_ok=True)
        run.save(run_dir / RUN_FILE, classes)
    return run.record(classes)
