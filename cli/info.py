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

    On a class raster (one integer band with class names or a palette, as
    predict writes it), also each class's name, colour, pixel count and area
    in square metres, read block by block (any size).

    \b
    Examples:
      glnet-geo info model.pt
      glnet-geo info classes.tif
    """
    from glnet_geo.info import describe

    info = describe(Path(path))
    if as_json:
        click.echo(json.dumps(info, indent=2, default=str))
        return
    # a class raster's classes (a checkpoint's are one line of text)
    classes = info.pop("classes") if isinstance(info.get("classes"), list) else None
    for key, value in info.items():
        click.echo(f"{key:>16}: {value}")
    if classes is not None:
        click.echo(_class_table(classes))


def _class_table(classes: list[dict]) -> str:
    """Format the classes of a class raster as an aligned text table."""
    total = sum(c["pixels"] for c in classes) or 1
    width = max([len(c["name"]) for c in classes] + [5])
    lines = [f"{'id':>4}  {'class':<{width}}  {'colour':<7}  {'pixels':>12}  {'%':>6}  "
             f"{'area (m2)':>14}"]
    for c in classes:
        area = "-" if c["area_m2"] is None else f"{c['area_m2']:,.1f}"
        lines.append(f"{c['id']:>4}  {c['name']:<{width}}  {c['color'] or '-':<7}  "
                     f"{c['pixels']:>12,}  {100 * c['pixels'] / total:>6.2f}  {area:>14}")
    return "\n".join(lines)
