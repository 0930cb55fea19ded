"""Click options shared by several commands, defined once."""

from __future__ import annotations

import click

overwrite_opt = click.option("--overwrite", is_flag=True,
                             help="Replace outputs that already exist.")
output_opt = click.option("-o", "--output", required=True, type=click.Path(dir_okay=True),
                          help="Output path.")

mode_opt = click.option(
    "--mode", type=click.Choice(["glnet", "global", "local", "coarse-to-fine"]), default="glnet",
    show_default=True,
    help="glnet: the checkpoint's own (G->L or G<->L); global: the global branch alone; local: "
         "the local branch's own logits; coarse-to-fine: GLNet only around the foreground G "
         "finds (class 0 is the background).")
skip_threshold_opt = click.option(
    "--skip-threshold", type=click.FloatRange(0, 1, min_open=True), metavar="P",
    help="Skip the local branch on patches where G predicts one class with a probability above "
         "P everywhere, e.g. 0.6: focal loss keeps GLNet's probabilities soft, so look at "
         "--probabilities before choosing (1.0 never skips).")
precision_opt = click.option(
    "--precision", default="auto", show_default=True, metavar="auto|fp32|bf16|fp16",
    help="What the network computes in. auto: bf16 on CPUs with native bf16 and on GPUs that "
         "support it (fp16 on older GPUs), else fp32.")
batch_size_opt = click.option(
    "--batch-size", type=click.IntRange(min=1), metavar="N",
    help="Patches per forward pass (bounds memory) [default: 1 on the CPU, 6 on a GPU].")
dataset_arg = click.argument("dataset", type=click.Choice(["deepglobe", "inria", "custom"]))


def dataset_opts(function):
    """Options that locate a dataset (``train`` and ``evaluate``)."""
    options = [
        click.option("--root", type=click.Path(file_okay=False), metavar="DIR",
                     help="deepglobe / inria: the dataset folder (torchgeo's layouts)."),
        click.option("--images", multiple=True, metavar="PATHS",
                     help="custom: image GeoTIFFs, a folder or a quoted glob (repeatable)."),
        click.option("--labels", multiple=True, metavar="PATHS",
                     help="custom: label GeoTIFFs (folder, glob) or one vector file "
                          "(GeoPackage, GeoJSON, Shapefile)."),
        click.option("--label-field", metavar="NAME",
                     help="custom, vector labels: the attribute holding the class id or name."),
        click.option("--classes", "class_file", type=click.Path(dir_okay=False), metavar="JSON",
                     help='custom: class file {"classes": [{"name": ..., "color": [r, g, b]}]}.'),
        click.option("--layer", metavar="NAME", help="custom: layer of a multi-layer vector file."),
        click.option("--paper-split", is_flag=True,
                     help="deepglobe: the GLNet paper's 454/207/142 image ids."),
        click.option("--inria-split", type=click.Choice(["city", "paper"]), default="city",
                     show_default=True,
                     help="inria: tiles 1-5 of each city for validation, or the paper's random "
                          "126/27/27."),
    ]
    for option in reversed(options):
        function = option(function)
    return function
