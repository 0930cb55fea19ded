"""``glnet-geo vectorize``: polygons from a class raster."""

from __future__ import annotations

from pathlib import Path

import click

from glnet_geo.cli.options import output_opt, overwrite_opt
from glnet_geo.vectorize.formats import describe


def _ids(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> list[int] | None:
    """Class ids from repeated and/or comma-separated values ("1,3" or "1 --classes 3")."""
    from glnet_geo.errors import InputError

    items = [v.strip() for text in value for v in text.split(",") if v.strip()]
    if not items:
        return None
    try:
        return [int(v) for v in items]
    except ValueError:
        raise InputError(f"--classes {','.join(items)!r} is not a list of integer class ids; "
                         f"pass e.g. --classes 1,2") from None


@click.command(short_help="Turn a class raster into GIS polygons.")
@click.argument("mask", type=click.Path(dir_okay=False))
@output_opt
@click.option("--format", "format_", metavar="FORMAT",
              help=f"{describe()} [default: from the extension of -o; GeoPackage "
                   "without one].")
@click.option("--simplify", type=float, default=0.0, show_default=True, metavar="M",
              help="Simplification tolerance in map units; neighbours keep shared edges.")
@click.option("--min-area", type=float, default=0.0, show_default=True, metavar="M2",
              help="Drop regions smaller than this (m2) and fill smaller holes.")
@click.option("--classes", multiple=True, callback=_ids, metavar="IDS",
              help="Class ids to keep, e.g. 1,3 [default: all].")
@click.option("--regularize", is_flag=True,
              help="Right-angled outlines (buildings); combine with --classes.")
@click.option("--probabilities", type=click.Path(dir_okay=False), metavar="RASTER",
              help="Probabilities raster (a band per class): adds the mean 'confidence'.")
@click.option("--class-names", metavar="NAMES",
              help="Comma-separated names by class id [default: the raster's class_names tag].")
@click.option("--connectivity", type=int, default=4, show_default=True, metavar="4|8",
              help="4: regions touching at a corner stay apart; 8: they are one region.")
@click.option("--block-size", type=int, default=1024, show_default=True, metavar="PX",
              help="Side of the blocks processed at a time (bounds memory).")
@overwrite_opt
def command(mask: str, output: str, format_: str | None, simplify: float, min_area: float,
            classes: list[int] | None, regularize: bool, probabilities: str | None,
            class_names: str | None, connectivity: int, block_size: int,
            overwrite: bool) -> None:
    """Write one polygon per connected region of the class raster MASK.

    Attributes: class_id, class_name, area_m2 (equal-area for geographic
    rasters) and, with --probabilities, confidence. GeoJSON is written in
    EPSG:4326 (RFC 7946); other formats keep the raster's CRS. The polygons
    open styled in QGIS (categorised on class_name with the raster's colours):
    a GeoPackage holds the style in its layer_styles table, other formats get
    a .qml beside them. Writing no feature gives one warning line.

    \b
    Examples:
      glnet-geo vectorize classes.tif -o landcover.gpkg --simplify 2 --min-area 100
      glnet-geo vectorize buildings.tif -o buildings.geojson --classes 1 --regularize
    """
    from glnet_geo.vectorize import vectorize_raster

    names = None if class_names is None else [n.strip() for n in class_names.split(",")]
    path = vectorize_raster(Path(mask), Path(output), simplify=simplify, min_area=min_area,
                            classes=classes, regularize=regularize, probabilities=probabilities,
                            format=format_, block_size=block_size,
                            connectivity=connectivity, overwrite=overwrite,
                            class_names=names)
    click.echo(f"Wrote {path}")
