"""Click options shared by several commands, defined once, and choices read from the library.

The command modules are imported for ``glnet-geo --help``, so they import no
library module at the top (torch and Lightning take seconds). Choices and
defaults that the library defines are named by their path instead
(``"glnet_geo.predict.settings:PredictMode"``) and read when a command's help
or its parsing needs them (:class:`LibraryChoice`, :class:`LibraryDefault`).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from enum import Enum
from typing import Any

import click


def library(path: str) -> Any:
    """Return the library object at ``module:name[.attribute...]``."""
    module, _, names = path.partition(":")
    value: Any = importlib.import_module(module)
    for name in names.split("."):
        value = getattr(value, name)
    return value


class LibraryChoice(click.Choice):
    """The values of a library enum, or the keys of a library mapping, as a click choice."""

    def __init__(self, path: str) -> None:
        super().__init__(())
        self.path = path

    @property
    def choices(self) -> tuple[str, ...]:
        """The choices, read from the library."""
        return tuple(v.value if isinstance(v, Enum) else str(v) for v in library(self.path))

    @choices.setter
    def choices(self, value: Any) -> None:  # click's __init__ sets them; the library's stand
        pass


class LibraryDefault(click.Option):
    """An option whose default is a library value, e.g. a dataclass field's default.

    Pass ``default_from="module:Class.field"``; the default is read when needed
    and shown in ``--help`` like a literal one.
    """

    def __init__(self, *args: Any, default_from: str, **kwargs: Any) -> None:
        kwargs.setdefault("show_default", True)
        super().__init__(*args, default=lambda: _plain(library(default_from)), **kwargs)

    def get_default(self, ctx: click.Context, call: bool = True) -> Any:
        """Return the library's value (also for ``--help``, where click asks not to call)."""
        return super().get_default(ctx, call=True)


def _plain(value: Any) -> Any:
    return value.value if isinstance(value, Enum) else value

overwrite_opt = click.option("--overwrite", is_flag=True,
                             help="Replace outputs that already exist.")
output_opt = click.option("-o", "--output", required=True, type=click.Path(dir_okay=True),
                          help="Output path.")

mode_opt = click.option(
    "--mode", type=LibraryChoice("glnet_geo.predict.settings:PredictMode"), cls=LibraryDefault,
    default_from="glnet_geo.predict.settings:PredictMode.GLNET",
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
    help="Patches per forward pass (bounds memory) [default: 1 on the CPU, 6 on a GPU]; in "
         "--mode global, scenes' global views [default: 4].")
#: The datasets glnet-geo reads (:class:`glnet_geo.training.data.DatasetKind`).
DATASETS = LibraryChoice("glnet_geo.training.data:DatasetKind")
dataset_arg = click.argument("dataset", type=DATASETS)


INRIA_SPLIT = "glnet_geo.datasets.inria:InriaSplitRule"


def dataset_opts(function: Callable[..., Any]) -> Callable[..., Any]:
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
        click.option("--inria-split", type=LibraryChoice(INRIA_SPLIT),
                     cls=LibraryDefault, default_from=f"{INRIA_SPLIT}.CITY",
                     help="inria: tiles 1-5 of each city for validation, or the paper's random "
                          "126/27/27."),
    ]
    for option in reversed(options):
        function = option(function)
    return function
