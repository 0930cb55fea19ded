"""``glnet-geo train``: GLNet's three training stages on DeepGlobe, Inria or your own imagery."""

from __future__ import annotations

import click

from glnet_geo.cli.options import (
    DATASETS,
    LibraryChoice,
    LibraryDefault,
    dataset_opts,
    overwrite_opt,
)

#: Where the defaults of the options come from.
TRAIN = "glnet_geo.training.settings:TrainSettings"
LOSSES = "glnet_geo.training.module:LossSettings"

#: Options that may be given with --config (the others come from the run file).
WITH_CONFIG = {"config", "output", "overwrite"}


def _epochs(ctx: click.Context, param: click.Parameter, value: str | None) -> list[int] | None:
    """Epoch counts from "50" (every stage) or "120,50,120" (stages 1, 2, 3)."""
    from glnet_geo.errors import InputError

    if value is None:
        return None
    try:
        counts = [int(v) for v in value.split(",")]
    except ValueError:
        counts = []
    if len(counts) not in (1, 3) or min(counts) < 1:
        raise InputError(f"--epochs {value!r}: expected one positive count for every stage or "
                         "three (stages 1, 2, 3), e.g. --epochs 120,50,120")
    return counts


@click.command(short_help="Train GLNet (Algorithm 1) and write a checkpoint.")
@click.argument("dataset", type=DATASETS, required=False)
@click.option("-o", "--output", type=click.Path(dir_okay=False), metavar="CHECKPOINT",
              help="The checkpoint to write [with --config: the run file's].")
@click.option("--config", type=click.Path(dir_okay=False), metavar="RUN.YAML",
              help="Repeat a run from its configuration (NAME.run/run.yaml for -o NAME.pt): "
                   "the data, every option and the seed; only -o and --overwrite may be "
                   "added.")
@dataset_opts
@click.option("--val-images", multiple=True, metavar="PATHS",
              help="custom: validation imagery [default: no validation].")
@click.option("--val-labels", multiple=True, metavar="PATHS", help="custom: its labels.")
@click.option("--stage", type=LibraryChoice("glnet_geo.training.settings:StagePlan"),
              cls=LibraryDefault, default_from=f"{TRAIN}.plan",
              help="Stage 1 (G), 2 (G->L), 3 (G<->L) or all three in order.")
@click.option("--backbone", type=LibraryChoice("glnet_geo.models.encoders:BACKBONES"),
              cls=LibraryDefault, default_from=f"{TRAIN}.backbone",
              help="Encoder of both branches.")
@click.option("--weights", metavar="imagenet|torchgeo:ENUM|PATH",
              help="Initialise a new model's encoders: 'imagenet' (torchvision's weights, "
                   "from its cache or downloaded), 'torchgeo:ResNet50_Weights.SENTINEL2_RGB_MOCO'"
                   " (torchgeo's, for as many bands as the imagery) or a torchvision ResNet "
                   "state_dict [default: random].")
@click.option("--init", type=click.Path(dir_okay=False), metavar="CHECKPOINT",
              help="Start from a glnet-geo checkpoint (the previous stage's output).")
@click.option("--resume", type=click.Path(dir_okay=False), metavar="CKPT",
              help="Continue an interrupted run from its Lightning checkpoint "
                   "(NAME.run/<stage>/last.ckpt for -o NAME.pt).")
@click.option("--global-size", type=click.IntRange(min=32), cls=LibraryDefault,
              default_from=f"{TRAIN}.global_size",
              metavar="PX", help="Side of the downsampled global view.")
@click.option("--patch-size", type=click.IntRange(min=32), cls=LibraryDefault,
              default_from=f"{TRAIN}.patch_size",
              metavar="PX", help="Side of the full-resolution patches.")
@click.option("--min-overlap", type=click.IntRange(min=0), cls=LibraryDefault,
              default_from=f"{TRAIN}.min_overlap",
              metavar="PX", help="Minimum overlap of neighbouring patches.")
@click.option("--scene-size", type=click.IntRange(min=32), metavar="PX",
              help="custom: side of the scenes [default: 2448, or the tiles' own size when "
                   "they are smaller: each tile one whole scene] (DeepGlobe/Inria: whole "
                   "images).")
@click.option("--samples-per-epoch", type=click.IntRange(min=1), metavar="N",
              help="custom: random scenes per epoch [default: about one per scene area].")
@click.option("--batch-size", type=click.IntRange(min=1), cls=LibraryDefault,
              default_from=f"{TRAIN}.batch_size",
              help="Scenes per optimizer step.")
@click.option("--sub-batch-size", type=click.IntRange(min=1), cls=LibraryDefault,
              default_from=f"{LOSSES}.sub_batch_size",
              help="Patches per forward/backward pass (gradients accumulate).")
@click.option("--epochs", callback=_epochs, metavar="N|N1,N2,N3",
              help="Epochs of every stage, or of stages 1, 2 and 3 [default: the official "
                   "code's 120,50,120].")
@click.option("--loss-reduction", type=LibraryChoice("glnet_geo.training.module:LossReduction"),
              cls=LibraryDefault, default_from=f"{LOSSES}.reduction",
              help="How a step's sub-batch losses add up: mean, or sum as the official code "
                   "(which weakens Adam's weight decay relative to the data term).")
@click.option("--global-pass", type=LibraryChoice("glnet_geo.training.module:GlobalPass"),
              cls=LibraryDefault, default_from=f"{LOSSES}.global_pass",
              help="Stage 3: run G once per scene, or once on the batch of scenes as the "
                   "official code (G's batch norm then sees the batch).")
@click.option("--max-steps", type=click.IntRange(min=1), help="Optimizer steps per stage.")
@click.option("--lr-global", type=float, cls=LibraryDefault,
              default_from=f"{LOSSES}.lr_global",
              help="Adam learning rate of the global branch.")
@click.option("--lr-local", type=float, cls=LibraryDefault,
              default_from=f"{LOSSES}.lr_local",
              help="Adam learning rate of the local branch.")
@click.option("--gamma", type=click.FloatRange(min=0), cls=LibraryDefault,
              default_from=f"{LOSSES}.gamma",
              help="Focal loss focusing parameter (the official code used 3).")
@click.option("--fmreg-weight", type=click.FloatRange(min=0), cls=LibraryDefault,
              default_from=f"{LOSSES}.fmreg_weight",
              help="Weight lambda of the feature-map regulariser.")
@click.option("--accelerator", default="auto", show_default=True, help="auto, cpu or gpu.")
@click.option("--devices", default="auto", show_default=True,
              help="Devices per node: a count or 'auto'.")
@click.option("--num-nodes", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--strategy", default="auto", show_default=True,
              help="'ddp' for several GPUs or nodes (gloo on CPUs).")
@click.option("--precision", help="Lightning precision [default: 16-mixed on GPU, else 32].")
@click.option("--workers", type=click.IntRange(min=0), default=0, show_default=True,
              help="Data loader processes.")
@click.option("--seed", type=int, cls=LibraryDefault, default_from=f"{TRAIN}.seed")
@click.option("--run-dir", type=click.Path(file_okay=False), metavar="DIR",
              help="Lightning checkpoints, logs and run.yaml [default: NAME.run next to -o "
                   "NAME.pt].")
@click.option("--checkpoint-every", type=click.IntRange(min=1), cls=LibraryDefault,
              default_from=f"{TRAIN}.checkpoint_every",
              metavar="STEPS", help="Save a resumable checkpoint every STEPS steps.")
@click.option("--log-every", type=click.IntRange(min=1), cls=LibraryDefault,
              default_from=f"{TRAIN}.log_every",
              metavar="STEPS", help="Log the training loss every STEPS steps.")
@click.option("--no-augment", is_flag=True, help="No random flips / 90-degree rotations.")
@click.option("--coarse-to-fine", is_flag=True,
              help="Train the local branch on the patches around the labels' foreground "
                   "only (class-balanced crops; class 0 is the background); the checkpoint "
                   "then predicts coarse-to-fine.")
@click.option("--quiet", is_flag=True,
              help="No progress report (neither the bar on a terminal nor the lines in a log).")
@overwrite_opt
def command(dataset: str | None, output: str | None, config: str | None, root: str | None,
            images: tuple[str, ...], labels: tuple[str, ...], label_field: str | None,
            class_file: str | None, layer: str | None, paper_split: bool, inria_split: str,
            val_images: tuple[str, ...], val_labels: tuple[str, ...], stage: str,
            backbone: str, weights: str | None, init: str | None, resume: str | None,
            global_size: int, patch_size: int, min_overlap: int, scene_size: int | None,
            samples_per_epoch: int | None, batch_size: int, sub_batch_size: int,
            epochs: list[int] | None, loss_reduction: str, global_pass: str,
            max_steps: int | None,
            lr_global: float, lr_local: float,
            gamma: float, fmreg_weight: float, accelerator: str, devices: str, num_nodes: int,
            strategy: str, precision: str | None, workers: int, seed: int,
            run_dir: str | None, checkpoint_every: int, log_every: int, no_augment: bool,
            coarse_to_fine: bool, quiet: bool, overwrite: bool) -> None:
    """Train GLNet on DATASET and write the checkpoint OUTPUT.

    Runs the stages of the paper's Algorithm 1 with Lightning: the global
    branch on downsampled scenes, then the local branch with global->local
    sharing, then the global branch with local->global sharing. Lightning's
    checkpoints (for --resume), CSV/TensorBoard logs and run.yaml (the whole
    run configuration, also stored in the checkpoint) go to NAME.run/ beside
    OUTPUT NAME.pt.
    On a terminal a progress bar shows each stage; piped into a log, plain
    lines do: one heading per stage, one line every --log-every steps (loss,
    learning rates, steps/s) and a summary.

    \b
    Examples:
      glnet-geo train deepglobe --root data/deepglobe -o deepglobe.pt --paper-split
      glnet-geo train custom --images 'tiles/*.tif' --labels landcover.gpkg
          --label-field class --scene-size 2048 -o mine.pt --devices 4 --strategy ddp
      glnet-geo train --config mine.run/run.yaml -o mine-again.pt
    """
    import logging

    from click.core import ParameterSource

    from glnet_geo.errors import InputError
    from glnet_geo.training.data import DataSettings
    from glnet_geo.training.module import LossSettings
    from glnet_geo.training.settings import TrainSettings
    from glnet_geo.training.trainer import NETWORK_SETTINGS, train

    if not click.get_current_context().find_root().params.get("verbose"):
        for name in ("lightning.pytorch", "lightning.fabric"):
            logging.getLogger(name).setLevel(logging.WARNING)

    if config is not None:
        from glnet_geo.training.run_config import RunConfig

        ctx = click.get_current_context()
        given = [param for param in ctx.command.params if param.name not in WITH_CONFIG
                 and ctx.get_parameter_source(param.name) is ParameterSource.COMMANDLINE]
        if given:
            names = ", ".join(param.human_readable_name if param.param_type_name == "argument"
                              else max(param.opts, key=len) for param in given)
            raise InputError(f"--config {config} repeats a run as it was saved, but {names} "
                             "was also given; edit the run file instead, or leave out "
                             "--config")
        run = RunConfig.load(config)
        path = train(run.data, run.training, output or run.output, overwrite=overwrite)
        _done(path)
        return
    if dataset is None or output is None:
        raise InputError("train needs a DATASET (deepglobe, inria or custom) and -o CHECKPOINT, "
                         "or --config RUN.YAML to repeat a run")
    data = DataSettings(kind=dataset, root=root, images=list(images), labels=list(labels),
                        label_field=label_field, classes=class_file, layer=layer,
                        val_images=list(val_images), val_labels=list(val_labels),
                        paper_split=paper_split, inria_rule=inria_split, scene_size=scene_size,
                        samples_per_epoch=samples_per_epoch)
    settings = TrainSettings(
        plan=stage, backbone=backbone, weights=weights, init=init, resume=resume,
        global_size=global_size, patch_size=patch_size, min_overlap=min_overlap,
        batch_size=batch_size, num_workers=workers, max_epochs=epochs, max_steps=max_steps,
        accelerator=accelerator, devices=int(devices) if devices.isdigit() else devices,
        num_nodes=num_nodes, strategy=strategy, precision=precision, seed=seed,
        run_dir=run_dir, checkpoint_every=checkpoint_every, log_every=log_every,
        augment=not no_augment,
        losses=LossSettings(gamma=gamma, fmreg_weight=fmreg_weight, lr_global=lr_global,
                            lr_local=lr_local, sub_batch_size=sub_batch_size,
                            reduction=loss_reduction, global_pass=global_pass),
        progress=not quiet, coarse_to_fine=coarse_to_fine, given=_given(NETWORK_SETTINGS))
    _done(train(data, settings, output, overwrite=overwrite))


def _done(path: object) -> None:
    """Say where the checkpoint went (once, also under DDP)."""
    from lightning.pytorch.utilities import rank_zero_only

    if rank_zero_only.rank == 0:  # with DDP, every process runs this command
        click.echo(f"wrote {path}")


def _given(names: tuple[str, ...]) -> frozenset[str]:
    """Return the parameters among ``names`` that the command line set (not their defaults)."""
    from click.core import ParameterSource

    ctx = click.get_current_context()
    return frozenset(n for n in names if ctx.get_parameter_source(n) is ParameterSource.COMMANDLINE)
