"""Predicting whole rasters in this process: check everything, then scene after scene.

:func:`predict_raster` checks every input and output before the model runs
(:meth:`~glnet_geo.predict.outputs.OutputPlan.check`), loops over the scene grid
(:func:`glnet_geo.io.scenes.scene_grid`, visited in bands that GDAL's block
cache holds: :func:`cached_band_width`), predicts each scene
(:func:`~glnet_geo.predict.blending.predict_scenes`) and streams its core into
the outputs (:func:`~glnet_geo.predict.outputs.write_outputs`).
:func:`predict_rasters` does the same for several inputs with the checkpoint
loaded once. With Dask workers or ``resume`` both hand the run to
:func:`glnet_geo.predict.distributed.predict_in_parts`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from glnet_geo.checkpoint import Checkpoint
from glnet_geo.imagery import warn_if_unlike_training
from glnet_geo.io.reader import RasterInput, block_cache
from glnet_geo.io.scenes import Scene, in_bands, scene_grid
from glnet_geo.io.writer import scaled_probabilities
from glnet_geo.models import GLNet
from glnet_geo.precision import Precision, resolve_precision
from glnet_geo.predict.blending import predict_scenes
from glnet_geo.predict.distributed import Cluster, predict_in_parts
from glnet_geo.predict.outputs import (
    Core,
    OutputPlan,
    PredictedRaster,
    directories_kept_on_success,
    directory_plans,
    output_tags,
    write_outputs,
)
from glnet_geo.predict.progress import progress_bar
from glnet_geo.predict.settings import (
    GDAL_CACHE_MB,
    PredictMode,
    PredictOptions,
    SceneSettings,
    prepare_checkpoint,
    resolve_device,
)
from glnet_geo.predict.stac import write_prediction_item


def predict_raster(checkpoint: Checkpoint | str | os.PathLike, input: str | os.PathLike,
                   output: str | os.PathLike, *, probabilities: str | os.PathLike | None = None,
                   preview: str | os.PathLike | None = None,
                   polygons: str | os.PathLike | None = None,
                   mode: PredictMode | str = PredictMode.GLNET,
                   skip_threshold: float | None = None, device: str = "auto",
                   precision: Precision | str = Precision.AUTO,
                   batch_size: int | None = None, scene_size: int | None = None,
                   halo: int | None = None, bands: Sequence[int] | None = None,
                   nodata: float | None = None, overwrite: bool = False,
                   progress: bool | None = None, workers: int | None = None,
                   threads_per_worker: int | None = None, scheduler: str | None = None,
                   resume: bool = False,
                   stac: str | os.PathLike | None = None,
                   creation_options: Mapping[str, str] | None = None) -> PredictedRaster:
    """Predict a class raster aligned pixel for pixel with ``input``.

    The raster is cut into scenes (:func:`glnet_geo.io.scenes.scene_grid`);
    each is predicted by :func:`~glnet_geo.predict.blending.predict_scenes` and
    its core written into a tiled GeoTIFF that becomes a Cloud-Optimized
    GeoTIFF with overviews, moved to ``output`` only when complete. The
    full-resolution raster is never in memory.

    Args:
        checkpoint: A checkpoint path or a loaded :class:`Checkpoint`.
        input: Any raster rasterio opens (GeoTIFF, VRT, ``/vsicurl/...``).
        output: Path of the class raster (uint8 COG, nodata 255, palette and
            class names from the checkpoint).
        probabilities: Also write per-class confidence here (one uint8 band
            per class, ``round(255 * p)``, masked pixels 0 under an internal
            mask).
        preview: Also write a quick-look PNG (input with classes overlaid and
            a legend) here.
        polygons: Also vectorise the classes into this file
            (:func:`glnet_geo.vectorize.vectorize_raster`).
        mode: ``glnet`` (the checkpoint's own), ``global``, ``local`` or
            ``coarse-to-fine`` (:class:`PredictMode`).
        skip_threshold: Skip the local branch on patches where G predicts
            one class with a probability above this everywhere (None or
            1.0: never).
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
        precision: ``auto``, ``fp32``, ``bf16`` or ``fp16``
            (:mod:`glnet_geo.precision`).
        batch_size: Patches per forward pass, or in global mode scenes'
            global views (default:
            :func:`~glnet_geo.predict.settings.default_batch_size`).
        scene_size: Side of a scene in pixels (default: the checkpoint's).
        halo: Context kept around each scene's core where scenes meet
            (default: half a patch).
        bands: 1-based input bands to use instead of the checkpoint's.
        nodata: Mask the pixels where every band holds this value, for an
            input whose nodata collar is not tagged (``--nodata``).
        overwrite: Replace existing outputs.
        progress: Show a progress bar (default: only on a terminal).
        workers: Predict the scenes on a local Dask cluster of this many
            processes (:mod:`glnet_geo.predict.distributed`).
        threads_per_worker: Torch threads of each Dask task (default: 1 on
            a local cluster, the workers' own on an existing one).
        scheduler: Predict the scenes on the Dask cluster at this address
            (``tcp://host:8786``) instead.
        resume: Keep each finished scene on disk and, on a new run, take the
            scenes an interrupted run finished (in process or on Dask).
        stac: Also write a STAC Item describing the outputs here
            (:mod:`glnet_geo.predict.stac`).
        creation_options: GDAL creation options of the class COG (``--co``),
            e.g. ``{"COMPRESS": "ZSTD"}``, checked before any work
            (:func:`glnet_geo.io.writer.check_creation_options`).

    Returns:
        The paths written.

    Raises:
        CheckpointError: ``checkpoint`` is not a glnet-geo checkpoint.
        InputError: Unreadable input, mismatching bands, bad settings.
        OutputExistsError: An output exists and ``overwrite`` is false.
        OutputError: An output directory is missing or not writable.

    """
    source = os.fspath(input)
    plan = OutputPlan.of(output, probabilities, preview, polygons, stac)
    options = PredictOptions(mode=mode, skip_threshold=skip_threshold, device=device,
                             precision=precision, batch_size=batch_size,
                             scene_size=scene_size, halo=halo, bands=bands, nodata=nodata,
                             overwrite=overwrite, progress=progress, resume=resume,
                             creation_options=creation_options or {})
    cluster = Cluster.requested(workers, threads_per_worker, scheduler)
    return _predict(checkpoint, [source], [plan], options, cluster)[0]


def predict_rasters(checkpoint: Checkpoint | str | os.PathLike,
                    inputs: Sequence[str | os.PathLike], output: str | os.PathLike, *,
                    probabilities: str | os.PathLike | None = None,
                    preview: str | os.PathLike | None = None,
                    polygons: str | os.PathLike | None = None,
                    polygon_suffix: str = ".gpkg", stac: str | os.PathLike | None = None,
                    workers: int | None = None, threads_per_worker: int | None = None,
                    scheduler: str | None = None, **options: Any) -> list[PredictedRaster]:
    """Predict several rasters; ``output`` (and each optional path) is a directory.

    Each input ``<stem>.<ext>`` gives ``output/<stem>.tif`` (and
    ``probabilities/<stem>.tif``, ``preview/<stem>.png``,
    ``polygons/<stem><polygon_suffix>``, ``stac/<stem>.json``:
    :func:`~glnet_geo.predict.outputs.directory_plans`). Every output is
    checked before the first raster is predicted; the checkpoint is loaded
    once.

    Args:
        checkpoint: A checkpoint path or a loaded :class:`Checkpoint`.
        inputs: The rasters.
        output: Directory of the class rasters (created if missing).
        probabilities: Directory of the probabilities rasters.
        preview: Directory of the quick-look PNGs.
        polygons: Directory of the polygon files.
        polygon_suffix: File extension of the polygon files (the format).
        stac: Directory of the STAC Items (``<stem>.json``).
        workers: Predict on a local Dask cluster of this many processes.
        threads_per_worker: Torch threads of each Dask task.
        scheduler: Predict on the Dask cluster at this address.
        **options: The other options of :func:`predict_raster` (mode,
            device, precision, batch_size, overwrite, resume, ...: the fields
            of :class:`~glnet_geo.predict.settings.PredictOptions`).

    Returns:
        What was written for each input, in order.

    """
    run = PredictOptions(**options)
    with directories_kept_on_success(output, probabilities, preview, polygons, stac):
        plans = directory_plans(inputs, output, probabilities=probabilities, preview=preview,
                                polygons=polygons, polygon_suffix=polygon_suffix, stac=stac)
        sources = [os.fspath(source) for source in inputs]
        cluster = Cluster.requested(workers, threads_per_worker, scheduler)
        return _predict(checkpoint, sources, plans, run, cluster)


def _predict(checkpoint: Checkpoint | str | os.PathLike, sources: Sequence[str],
             plans: Sequence[OutputPlan], options: PredictOptions,
             cluster: Cluster | None) -> list[PredictedRaster]:
    """Check every plan, then predict the inputs here with the checkpoint loaded once.

    With a cluster or ``resume`` the run goes through parts instead
    (:func:`~glnet_geo.predict.distributed.predict_in_parts`, which checks the same).
    """
    if cluster is not None or options.resume:
        return predict_in_parts(checkpoint, sources, plans, options, cluster)
    device = resolve_device(options.device)
    for source, plan in zip(sources, plans, strict=True):
        plan.check(source, options.overwrite)
    loaded = prepare_checkpoint(checkpoint, device, resolve_precision(options.precision, device))
    return [_predict_here(loaded, source, plan, options, device)
            for source, plan in zip(sources, plans, strict=True)]


def _predict_here(checkpoint: Checkpoint, source: str, plan: OutputPlan,
                  options: PredictOptions, device: torch.device) -> PredictedRaster:
    """Predict one checked input scene after scene with a prepared checkpoint."""
    config = checkpoint.config
    settings = options.scene_settings(config).on(device)
    scene_size, halo = options.scene_grid_sizes(config)
    with block_cache(GDAL_CACHE_MB), \
            RasterInput.open(source, config.bands, config.normalization, options.bands,
                             options.nodata) as raster:
        warn_if_unlike_training(config.imagery, raster, source)
        scenes = in_bands(scene_grid(raster.height, raster.width, scene_size, halo),
                          cached_band_width(raster, scene_size))
        total = sum(settings.steps(scene) for scene in scenes)
        with progress_bar(total, Path(source).name, "patch", options.progress) as bar:
            cores = predicted_cores(checkpoint.model, raster, scenes, settings, device,
                                    plan.needs_probabilities, bar)
            result = write_outputs(source, raster, config, cores,
                                   output_tags(source, settings, scene_size, halo), plan,
                                   overwrite=options.overwrite,
                                   creation_options=options.creation_options)
    result.scenes, result.precision = len(scenes), settings.precision.value
    if plan.stac is not None:
        result.stac = write_prediction_item(plan.stac, result, checkpoint)
    return result


def cached_band_width(raster: RasterInput, scene_size: int) -> int:
    """Return the width of the scene bands (:func:`~glnet_geo.io.scenes.in_bands`).

    The widest band whose row of scenes (``scene_size`` rows of pixels plus up
    to one block row, every band of the raster) fits in half of GDAL's block
    cache (:data:`~glnet_geo.predict.settings.GDAL_CACHE_MB`), so the next row
    of scenes finds the overlap still cached; at least one scene.
    """
    dataset = raster.dataset
    rows = scene_size + dataset.block_shapes[0][0]
    pixel_bytes = sum(np.dtype(dtype).itemsize for dtype in dataset.dtypes)
    return max(scene_size, GDAL_CACHE_MB * 2**20 // 2 // (rows * pixel_bytes))


def predicted_cores(model: GLNet, raster: RasterInput, scenes: Sequence[Scene],
                    settings: SceneSettings, device: torch.device, with_probabilities: bool,
                    bar: Any) -> Iterator[Core]:
    """Predict the scenes lazily, as :class:`Core` s for the writers.

    One scene at a time, or in global mode a few whose global views go
    through G together (:meth:`~glnet_geo.predict.settings.SceneSettings.scenes_per_pass`).
    """
    per_pass = settings.scenes_per_pass(with_probabilities)
    for start in range(0, len(scenes), per_pass):
        group = scenes[start:start + per_pass]
        bar.set_postfix_str(f"scene {start + len(group)}/{len(scenes)}")
        for prediction in predict_scenes(model, raster, group, settings, device,
                                         with_probabilities, bar.update):
            scaled = None
            if with_probabilities:
                scaled = scaled_probabilities(prediction.probabilities, prediction.valid)
            yield Core(prediction.window, prediction.classes, scaled)
