"""``glnet-geo info``: what a checkpoint or a raster holds."""

from __future__ import annotations

import json
from pathlib import Path

import click


@click.command(short_help="Describe a checkpoint or a raster.")
@click.argument("path", type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def command(path: str, as_json: bool) -> None:
    """Print what CHECKPOINT (or RASTER) holds.

    \b
    Example:
      glnet-geo info model.pt
    """
    from glnet_geo.info import describe

    info = describe(Path(path))
    if as_json:
        click.echo(json.dumps(info, indent=2, default=str))
        return
    for key, value in info.items():
        click.echo(f"{key:>16}: {value}")
