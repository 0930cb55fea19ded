"""``glnet-geo predict``: class rasters from GeoTIFFs of any size."""

from __future__ import annotations

import click

from glnet_geo.cli.options import (
    batch_size_opt,
    mode_opt,
    output_opt,
    overwrite_opt,
    precision_opt,
    skip_threshold_opt,
)
from glnet_geo.vectorize.formats import describe


def _bands(ctx: click.Context, param: click.Parameter, value: str | None) -> list[int] | None:
    """1-based band indexes from a comma-separated list ("4,3,2")."""
    from glnet_geo.errors import InputError

    if value is None:
        return None
    try:
        bands = [int(v) for v in value.split(",") if v.strip()]
    except ValueError:
        bands = []
    if not bands or min(bands) < 1:
        raise InputError(f"--bands {value!r} is not a list of 1-based band indexes; pass e.g. "
                         "--bands 1,2,3")
    return bands


def _creation_options(ctx: click.Context, param: click.Parameter,
                      value: tuple[str, ...]) -> dict[str, str]:
    """GDAL creation options from repeated NAME=VALUE ("--co COMPRESS=ZSTD --co LEVEL=9")."""
    from glnet_geo.errors import InputError

    options = {}
    for pair in value:
        name, sep, text = pair.partition("=")
        if not sep or not name.strip():
            raise InputError(f"--co {pair!r} is not NAME=VALUE; pass e.g. --co COMPRESS=ZSTD")
        options[name.strip().upper()] = text.strip()
    return options


@click.command(short_help="Predict a class raster aligned with each input raster.")
@click.argument("checkpoint", type=click.Path(dir_okay=False))
@click.argument("inputs", nargs=-1, required=True, metavar="INPUT...")
@output_opt
@click.option("--polygons", type=click.Path(), metavar="PATH",
              help=f"Also write polygons (format from the extension: {describe(names=False)}).")
@click.option("--probabilities", type=click.Path(), metavar="PATH",
              help="Also write per-class confidence (one uint8 band per class, 255 = 1.0).")
@click.option("--preview", type=click.Path(), metavar="PNG",
              help="Also write a quick-look PNG: the input, the classes overlaid, a legend.")
@click.option("--stac", type=click.Path(), metavar="PATH",
              help="Also write a STAC Item (JSON) describing the outputs: footprint, "
                   "projection, classes, provenance.")
@mode_opt
@skip_threshold_opt
@click.option("--device", default="auto", show_default=True, metavar="auto|cpu|cuda[:N]",
              help="Where the model runs.")
@precision_opt
@batch_size_opt
@click.option("--scene-size", type=click.IntRange(min=1), metavar="PX",
              help="Side of the scenes GLNet sees whole [default: the checkpoint's].")
@click.option("--halo", type=click.IntRange(min=0), metavar="PX",
              help="Context kept around each scene's core where scenes meet "
                   "[default: half a patch].")
@click.option("-b", "--bands", "--bidx", "bands", callback=_bands, metavar="LIST",
              help="1-based input bands to use, e.g. 4,3,2 [default: the checkpoint's].")
@click.option("--nodata", type=float, metavar="VALUE",
              help="Mask pixels where every band holds VALUE (an untagged collar, e.g. 0).")
@click.option("--co", "creation_options", multiple=True,
              callback=_creation_options, metavar="NAME=VALUE",
              help="GDAL creation option of the class COG (repeatable), e.g. --co COMPRESS=ZSTD "
                   "--co LEVEL=9; checked against GDAL's COG driver before any work.")
@click.option("--workers", type=int, metavar="N",
              help="Predict the scenes on a local Dask cluster of N processes.")
@click.option("--threads-per-worker", type=int, metavar="N",
              help="Torch threads of each Dask worker's task [default: 1 with --workers, "
                   "the workers' own with --scheduler].")
@click.option("--scheduler", metavar="ADDRESS",
              help="Predict the scenes on an existing Dask cluster (tcp://host:8786).")
@click.option("--resume", is_flag=True,
              help="Keep finished scenes on disk; rerun to finish an interrupted run.")
@click.option("--progress/--no-progress", default=None,
              help="Show a progress bar [default: only on a terminal].")
@overwrite_opt
def command(checkpoint: str, inputs: tuple[str, ...], output: str, polygons: str | None,
            probabilities: str | None, preview: str | None, stac: str | None, mode: str,
            skip_threshold: float | None, device: str, precision: str, batch_size: int | None,
            scene_size: int | None, halo: int | None, bands: list[int] | None,
            nodata: float | None, creation_options: dict[str, str], workers: int | None,
            threads_per_worker: int | None, scheduler: str | None, resume: bool,
            progress: bool | None, overwrite: bool) -> None:
    """Predict a class raster from each INPUT with CHECKPOINT.

    INPUT is anything GDAL opens: a GeoTIFF, a VRT mosaic, a /vsicurl/ URL,
    a folder of rasters or a glob ('tiles/*.tif', expanded here if quoted).
    The output is a Cloud-Optimized GeoTIFF on the input's grid (same CRS,
    transform and size): uint8 class ids, nodata 255 where the input is
    nodata or masked, the checkpoint's palette and class names, with a QGIS
    style (.qml) and GDAL category names (.aux.xml) beside it. With several
    INPUTs, a folder or a glob, OUTPUT (and --probabilities, --preview,
    --polygons, --stac) are directories that receive one file per input,
    named after it.

    \b
    Examples:
      glnet-geo predict model.pt ortho.tif -o classes.tif --preview classes.png \\
          --stac classes.json
      glnet-geo predict model.pt tiles/ -o classes/ --polygons polygons/ --workers 2
      glnet-geo predict buildings.pt county.tif -o buildings.tif --skip-threshold 0.6
      glnet-geo predict model.pt ortho.tif -o classes.tif -b 4,3,2 --co COMPRESS=ZSTD
    """
    from glnet_geo.io.reader import expand_inputs
    from glnet_geo.predict import predict_raster, predict_rasters

    sources = expand_inputs(inputs)
    options = dict(probabilities=probabilities, preview=preview, polygons=polygons, stac=stac,
                   mode=mode, skip_threshold=skip_threshold, device=device, precision=precision,
                   batch_size=batch_size, scene_size=scene_size, halo=halo, bands=bands,
                   nodata=nodata, overwrite=overwrite,
                   progress=progress, workers=workers, threads_per_worker=threads_per_worker,
                   scheduler=scheduler, resume=resume, creation_options=creation_options)
    if sources == list(inputs) and len(inputs) == 1:
        results = [predict_raster(checkpoint, sources[0], output, **options)]
    else:
        results = predict_rasters(checkpoint, sources, output, **options)
    for result in results:
        written = ", ".join(map(str, result.files))
        if resume and result.scenes == 0:
            click.echo(f"{result.input}: already done -> {written}")
            continue
        resumed = f" ({result.resumed} resumed)" if result.resumed else ""
        click.echo(f"{result.input}: {result.scenes} scene(s){resumed} in {result.precision} "
                   f"-> {written}")
