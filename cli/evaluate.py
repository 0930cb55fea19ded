"""``glnet-geo evaluate``: mIoU, per-class IoU, pixel accuracy and confusion matrix."""

from __future__ import annotations

import json
from pathlib import Path

import click

from glnet_geo.cli.options import (
    LibraryChoice,
    LibraryDefault,
    batch_size_opt,
    dataset_arg,
    dataset_opts,
    mode_opt,
    overwrite_opt,
    precision_opt,
    skip_threshold_opt,
)


@click.command(short_help="Score a checkpoint on labelled data (mIoU, confusion matrix).")
@click.argument("checkpoint", type=click.Path(dir_okay=False))
@dataset_arg
@dataset_opts
@click.option("--split", type=LibraryChoice("glnet_geo.datasets.split:Split"),
              help="deepglobe / inria: which part to score. With --paper-split the names are "
                   "the official files': crossvali (207 ids, the paper's Table 2; also 'val'), "
                   "test (142 ids, unused by the official code), train [default: crossvali "
                   "with --paper-split, else test].")
@click.option("--protocol", type=LibraryChoice("glnet_geo.training.evaluation:Protocol"),
              cls=LibraryDefault, default_from="glnet_geo.training.evaluation:Protocol.OURS",
              help="ours: bilinear, softmax, blended patches, ignored class left out. "
                   "official: the official GLNet evaluator (nearest x4, logits summed over "
                   "overlaps, unknown kept in the matrix) to compare with the paper.")
@mode_opt
@skip_threshold_opt
@click.option("--json", "json_path", type=click.Path(dir_okay=False), metavar="PATH",
              help="Write the scores as JSON, and the confusion matrix as PATH.png beside it.")
@batch_size_opt
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@precision_opt
@overwrite_opt
def command(checkpoint: str, dataset: str, root: str | None, images: tuple[str, ...],
            labels: tuple[str, ...], label_field: str | None, class_file: str | None,
            layer: str | None, paper_split: bool, inria_split: str, split: str | None,
            protocol: str, mode: str, skip_threshold: float | None, json_path: str | None,
            batch_size: int | None, device: str, precision: str, overwrite: bool) -> None:
    """Score CHECKPOINT on the labelled scenes of DATASET.

    Every scene is predicted whole, as 'glnet-geo predict' does, and its
    pixels go into one confusion matrix (the code of training's validation).
    The ignored class (DeepGlobe's 'unknown') is left out of the mIoU; for
    Inria the building IoU is printed too. To compare with the paper, score
    the 207 crossvali ids with the official protocol (first example).

    \b
    Examples:
      glnet-geo evaluate l2g.pt deepglobe --root data/deepglobe --paper-split
          --split crossvali --protocol official --json paper.json
      glnet-geo evaluate deepglobe.pt deepglobe --root data/deepglobe --paper-split
      glnet-geo evaluate mine.pt custom --images 'test/*.tif' --labels test.gpkg
          --label-field class --json scores.json
    """
    import logging

    from glnet_geo.io.writer import check_output
    from glnet_geo.precision import resolve_precision
    from glnet_geo.predict.settings import resolve_device
    from glnet_geo.training.data import DataSettings
    from glnet_geo.training.evaluation import evaluate_checkpoint

    paper = dataset == "deepglobe" and paper_split
    if split is None:
        split = "crossvali" if paper else "test"
    elif paper and split == "test":
        logging.getLogger("glnet_geo.evaluate").warning(
            "--split test is the paper split's test.txt (142 ids), which the official code "
            "never scores; the paper's Table 2 corresponds to --split crossvali (207 ids)")

    outputs = [] if json_path is None else [Path(json_path), Path(json_path).with_suffix(".png")]
    for path in outputs:  # before the evaluation: it can take hours
        check_output(path, overwrite=overwrite)
    data = DataSettings(kind=dataset, root=root, images=list(images), labels=list(labels),
                        label_field=label_field, classes=class_file, layer=layer,
                        paper_split=paper_split, inria_rule=inria_split)
    result = evaluate_checkpoint(checkpoint, data, split, mode, skip_threshold, batch_size,
                                 device, precision, protocol=protocol)
    click.echo(result.table())
    click.echo(f"protocol: {protocol}")
    report = {"checkpoint": checkpoint, "dataset": dataset, "split": split, "mode": mode,
              "skip_threshold": skip_threshold,
              "precision": resolve_precision(precision, resolve_device(device)).value,
              **result.to_dict()}
    if paper:
        from glnet_geo.datasets.deepglobe import PAPER_SPLIT_FILES, paper_split_ids

        report["split_file"] = PAPER_SPLIT_FILES[split]
        report["split_ids"] = len(paper_split_ids(split))
    if dataset == "inria":
        building = result.class_iou("building")
        click.echo(f"building IoU: {100 * building:.1f}")
        report["building_iou"] = building
    if json_path is not None:
        _write_atomic(outputs[0], json.dumps(report, indent=2) + "\n")
        result.plot_confusion(outputs[1])
        click.echo(f"wrote {outputs[0]} and {outputs[1]}")


def _write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to a temporary name beside ``path``, then move it there."""
    import os

    from glnet_geo.io.staging import Staging
    from glnet_geo.io.writer import writing

    with Staging(path) as staging, writing(path):  # a stop or a full disk leaves nothing
        tmp = staging.path(".partial")
        tmp.write_text(text)
        os.replace(tmp, path)
