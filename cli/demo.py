"""``glnet-geo demo``: the whole mission on a generated sample scene, in minutes on a CPU."""

from __future__ import annotations

import click

from glnet_geo.cli.options import LibraryDefault, overwrite_opt, precision_opt


@click.command(short_help="Train, predict, vectorize and score a sample scene end to end.")
@click.option("-o", "--output", default="demo-output", show_default=True,
              type=click.Path(file_okay=False), help="Folder of the outputs.")
@click.option("--sample-size", type=click.IntRange(min=128), cls=LibraryDefault,
              default_from="glnet_geo.demo:DemoSettings.sample_size",
              metavar="PX", help="Side of the generated sample scene.")
@click.option("--steps-global", type=click.IntRange(min=1), cls=LibraryDefault,
              default_from="glnet_geo.demo:DemoSettings.steps_global",
              help="Training steps of the global branch (stage 1).")
@click.option("--steps-local", type=click.IntRange(min=1), cls=LibraryDefault,
              default_from="glnet_geo.demo:DemoSettings.steps_local",
              help="Training steps of the local-only model (the local branch alone).")
@click.option("--steps-sharing", type=click.IntRange(min=1), cls=LibraryDefault,
              default_from="glnet_geo.demo:DemoSettings.steps_sharing",
              help="Training steps of stage 2 (global->local), from the local-only model's L.")
@click.option("--train-scenes", type=click.IntRange(min=1), cls=LibraryDefault,
              default_from="glnet_geo.demo:DemoSettings.train_scenes",
              help="Number of generated 128 px training scenes.")
@precision_opt
@overwrite_opt
def command(output: str, sample_size: int, steps_global: int, steps_local: int,
            steps_sharing: int, train_scenes: int, precision: str, overwrite: bool) -> None:
    """Run glnet-geo end to end on a seeded sample scene, on the CPU.

    Writes a georeferenced sample GeoTIFF (UTM zone 31N), trains a small
    ResNet-18 GLNet (global branch; local branch alone; then global->local
    from both), predicts the scene into a class COG, polygons (GeoPackage)
    and a preview PNG, scores global-only, local-only and GLNet against the
    scene's labels (evaluation.json) and prints the table and where each
    output is.

    \b
    Examples:
      glnet-geo demo -o demo-output
      glnet-geo demo -o quick --sample-size 512 --steps-global 50 --steps-local 30 \
        --steps-sharing 20
    """
    from glnet_geo.demo import DemoSettings, run_demo

    settings = DemoSettings(sample_size=sample_size, steps_global=steps_global,
                            steps_local=steps_local, steps_sharing=steps_sharing,
                            train_scenes=train_scenes, precision=precision)
    result = run_demo(output, settings, overwrite=overwrite, echo=click.echo)
    click.echo("")
    click.echo(f"mIoU (%) on the {sample_size} x {sample_size} px sample scene:")
    click.echo(result.table())
    click.echo("")
    click.echo("Outputs:")
    width = max(len(k) for k in result.files)
    for what, path in result.files.items():
        click.echo(f"  {what:<{width}}  {path}")
    click.echo("")
    seconds = ", ".join(f"{k} {v:.0f} s" for k, v in result.seconds.items())
    click.echo(f"Time: {seconds}.")
