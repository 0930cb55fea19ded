"""``glnet-geo import-official``: official GLNet weights -> a glnet-geo checkpoint."""

from __future__ import annotations

import click

from glnet_geo.cli.options import LibraryChoice, output_opt, overwrite_opt


@click.command(short_help="Convert official GLNet weights into a checkpoint.")
@click.argument("official", type=click.Path(dir_okay=False))
@output_opt
@click.option("--classes", type=LibraryChoice("glnet_geo.classes:PRESETS"), required=True,
              help="Class preset the weights were trained on.")
@click.option("--global-fixed", type=click.Path(dir_okay=False), metavar="STAGE1.pth",
              help="The stage-1 (global) .pth that goes with a G<->L (local2global) file.")
@overwrite_opt
def command(official: str, output: str, classes: str, global_fixed: str | None,
            overwrite: bool) -> None:
    """Convert OFFICIAL, a .pth of the official GLNet code, into a checkpoint.

    The checkpoint records the official setting (bands 1-3 scaled to [0, 1],
    508 px global view and patches, 50 px minimum overlap) and the stage,
    read from the weights: global (stage 1, fpn_deepglobe_global.pth),
    global-to-local (stage 2, ..._global2local.pth) or local-to-global
    (stage 3, ..._local2global.pth, whose G feeds on L's maps). A stage-3
    file needs --global-fixed, the stage-1 file, for the frozen G that feeds
    L; any other file is refused with it.

    \b
    Examples:
      glnet-geo import-official fpn_deepglobe_global2local.pth -o g2l.pt --classes deepglobe
      glnet-geo import-official fpn_deepglobe_local2global.pth -o l2g.pt --classes deepglobe \\
          --global-fixed fpn_deepglobe_global.pth
    """
    from glnet_geo.import_official import import_official

    path = import_official(official, output, classes=classes, global_fixed=global_fixed,
                           overwrite=overwrite)
    click.echo(f"wrote {path}")
