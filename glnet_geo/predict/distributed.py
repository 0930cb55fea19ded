"""Predicting scenes as independent tasks: in this process or on a Dask cluster.

A scene depends on no other scene, so ``predict`` scales out by turning every
scene of every input into a task (:class:`SceneTask`, plain data). A task
opens its input itself, reads only its scene's windows, predicts it with
:func:`glnet_geo.predict.blending.predict_scene` and writes the core as a part
(:mod:`glnet_geo.io.parts`) next to the output; it returns the scene index,
so no pixel data goes through the Dask scheduler. Once every part of an input
is there, the driver reads them back window by window into the same
Cloud-Optimized GeoTIFF writer the single-process path uses, publishes the
outputs and removes the parts.

Because finished scenes are on disk, an interrupted run started again with
``resume`` computes only the scenes still missing, and a failed scene does
not lose the others: the driver reports one error naming the input and the
scene, after keeping every finished part and publishing every input whose
scenes all finished.

Where tasks run:

- :class:`Cluster` with ``workers``: a :class:`dask.distributed.LocalCluster`
  of that many processes (one task at a time each, ``threads_per_worker``
  torch threads each);
- :class:`Cluster` with ``scheduler``: an existing cluster, whose workers
  must have glnet-geo installed and see the checkpoint, the inputs and the
  output directory under the same paths (shared storage, or GDAL paths such
  as ``/vsis3/...`` for inputs);
- no cluster: the tasks run one after the other in this process (what
  ``predict --resume`` without workers does).

Each worker process loads the checkpoint once (:func:`worker_checkpoint`,
a per-process cache keyed by path, size and modification time).
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from glnet_geo.allocator import ENVIRONMENT
from glnet_geo.checkpoint import Checkpoint, ModelConfig, read_checkpoint
from glnet_geo.errors import GLNetGeoError, InputError
from glnet_geo.imagery import warn_if_unlike_training
from glnet_geo.io.parts import PartStore, core_transform, write_part
from glnet_geo.io.reader import RasterInput, block_cache
from glnet_geo.io.scenes import Scene, scene_grid
from glnet_geo.io.writer import scaled_probabilities
from glnet_geo.precision import Precision
from glnet_geo.predict.blending import predict_scene
from glnet_geo.predict.outputs import (
    Core,
    OutputPlan,
    PredictedRaster,
    output_tags,
    write_outputs,
)
from glnet_geo.predict.progress import progress_bar
from glnet_geo.predict.settings import (
    GDAL_CACHE_MB,
    PredictOptions,
    SceneSettings,
    prepare_checkpoint,
    resolve_device,
)
from glnet_geo.predict.stac import write_prediction_item

if TYPE_CHECKING:
    from distributed import Client


@dataclass(frozen=True)
class Cluster:
    """Where scene tasks run: a local Dask cluster or an existing one.

    Attributes:
        workers: Processes of a :class:`~dask.distributed.LocalCluster`.
        threads_per_worker: Torch threads per worker process (default: 1 on
            a local cluster, the workers' own setting on an existing one).
        scheduler: Address of an existing Dask scheduler
            (``tcp://host:8786``); excludes ``workers``.

    """

    workers: int | None = None
    threads_per_worker: int | None = None
    scheduler: str | None = None

    def __post_init__(self) -> None:
        if self.workers is not None and self.scheduler is not None:
            raise InputError(f"--workers {self.workers} and --scheduler {self.scheduler} both "
                             "given; use --workers for a local cluster or --scheduler for an "
                             "existing one")
        if self.workers is not None and self.workers < 1:
            raise InputError(f"--workers {self.workers}; expected at least 1")
        if self.threads_per_worker is not None and self.threads_per_worker < 1:
            raise InputError(f"--threads-per-worker {self.threads_per_worker}; expected at "
                             "least 1")

    @classmethod
    def requested(cls, workers: int | None = None, threads_per_worker: int | None = None,
                  scheduler: str | None = None) -> Cluster | None:
        """Return the cluster asked for by ``--workers`` or ``--scheduler``, else None.

        Raises:
            InputError: Threads per worker without workers or a scheduler,
                or invalid values (see the class).

        """
        if workers is None and scheduler is None:
            if threads_per_worker is not None:
                raise InputError(f"--threads-per-worker {threads_per_worker} applies to Dask "
                                 "workers; add --workers N or --scheduler ADDRESS")
            return None
        return cls(workers, threads_per_worker, scheduler)

    @property
    def torch_threads(self) -> int | None:
        """Torch threads a task sets in its worker (None: leave the worker's)."""
        if self.threads_per_worker is None and self.workers is not None:
            return 1
        return self.threads_per_worker


#: Loggers of Dask's scheduler, workers and nannies (and of their web server).
DASK_LOGGERS = ("distributed", "tornado")


@contextmanager
def dask_logs(level: int) -> Iterator[None]:
    """Set Dask's loggers to ``level`` for the block, then restore them.

    Dask logs the cluster's life (scheduler start, each worker joining and
    leaving...) at INFO on loggers of its own, which our one handler on the
    root logger prints; a prediction shows our progress bar only, unless
    ``--verbose`` asked for debug logging.
    """
    loggers = [logging.getLogger(name) for name in DASK_LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(level)
    try:
        yield
    finally:
        for logger, previous in zip(loggers, levels, strict=True):
            logger.setLevel(previous)


def dask_log_level() -> int:
    """Return Dask's log level: INFO when glnet-geo logs debug (``-v``), else WARNING."""
    return logging.INFO if logging.getLogger("glnet_geo").isEnabledFor(logging.DEBUG) \
        else logging.WARNING


@contextmanager
def dask_client(cluster: Cluster) -> Iterator[Client]:
    """Start a LocalCluster (``cluster.workers``) or connect to ``cluster.scheduler``.

    Dask's own logs (in this process and in the local workers) are quiet
    unless glnet-geo logs debug (:func:`dask_log_level`).

    Raises:
        InputError: Dask is not installed, or the scheduler cannot be reached.

    """
    try:
        import dask
        from distributed import Client, LocalCluster
    except ImportError:
        raise InputError("--workers and --scheduler need dask.distributed; install it with "
                         "pip install 'dask[distributed]'") from None
    level = dask_log_level()
    if cluster.scheduler is not None:
        with dask_logs(level):
            try:
                client = Client(cluster.scheduler, timeout="20s")
            except (OSError, TimeoutError) as exc:
                raise InputError(f"cannot reach the Dask scheduler {cluster.scheduler} ({exc}); "
                                 "check the address (tcp://host:8786) and that it is "
                                 "running") from None
            with client:
                yield client
        return
    # the settings hold for the cluster's whole life: a nanny reads them whenever it starts
    with dask_logs(level), dask.config.set({**WORKER_MALLOC, WORKER_PROFILER: False}):
        local = LocalCluster(n_workers=cluster.workers, threads_per_worker=1, processes=True,
                             dashboard_address=None, silence_logs=level,
                             scheduler_kwargs=QUIET_HTTP)
        with local, Client(local) as client:
            client.run(_quiet_cancellations)
            yield client


def _quiet_cancellations() -> None:
    """In a local worker: do not log the cancelled scenes of a stopped run (said in one line).

    A run stopped by Ctrl-C or SIGTERM cancels the scenes in flight, which each worker
    reports as a WARNING of ``distributed.worker.state_machine``.
    """
    logging.getLogger("distributed.worker.state_machine").setLevel(logging.ERROR)


#: Dask's nannies set ``MALLOC_TRIM_THRESHOLD_`` (64 KiB) in new workers so that they
#: give freed memory back at once; it also turns off glibc's adaptive mmap threshold,
#: so every large tensor of a forward pass is mmapped and unmapped again and GLNet ran
#: about 1.5 times slower in a worker (``benchmarks/predict_dask.py``). Local workers
#: get glnet-geo's thresholds instead (:data:`glnet_geo.allocator.ENVIRONMENT`),
#: from their start; the thread limits (``OMP_NUM_THREADS`` ...) stay, each task sets
#: its torch threads itself.
WORKER_MALLOC = {f"distributed.nanny.pre-spawn-environ.{name}": value
                 for name, value in ENVIRONMENT.items()}
#: The scheduler serves its HTTP routes (health, metrics) even without a dashboard, on port
#: 8787 unless told otherwise, and warns when that port is taken (a second run, or another
#: cluster on this machine); a free port chosen by the system needs no warning.
QUIET_HTTP = {"dashboard_address": ":0"}
#: Dask workers sample their threads' stacks every 10 ms for the dashboard's profile,
#: which a local cluster without a dashboard does not show; off, it costs nothing.
WORKER_PROFILER = "distributed.worker.profile.enabled"


@dataclass(frozen=True)
class SceneTask:
    """One scene to predict and write as a part: plain data, sent to a worker.

    Attributes:
        checkpoint: Path of the checkpoint, as the worker sees it.
        source: The input raster (a path or a GDAL path).
        bands: 1-based input bands chosen by the user, or None.
        scene: The scene.
        scenes: Number of scenes of the input (for messages).
        settings: How to predict.
        device: Where the model runs, resolved on the worker (``auto``: its GPU if any).
        part: Path of the part to write.
        probabilities: Also store the scaled probabilities.
        torch_threads: Torch threads to use (None: leave the process's).
        nodata: The ``--nodata`` value, or None.

    """

    checkpoint: str
    source: str
    bands: tuple[int, ...] | None
    scene: Scene
    scenes: int
    settings: SceneSettings
    device: str
    part: str
    probabilities: bool
    torch_threads: int | None = None
    nodata: float | None = None

    def describe(self) -> str:
        """Name the scene in messages: its number, its input and its read window."""
        w = self.scene.read
        return (f"scene {self.scene.index + 1} of {self.scenes} of input {self.source} "
                f"(columns {w.col_off}..{w.col_off + w.width}, rows "
                f"{w.row_off}..{w.row_off + w.height})")


_CACHE: dict[tuple[str, int, int, str, str], Checkpoint] = {}
_LOADS: Counter[str] = Counter()
_LOCK = threading.Lock()


def worker_checkpoint(path: str | os.PathLike, device: str | torch.device,
                      precision: Precision = Precision.FP32) -> Checkpoint:
    """Return the checkpoint at ``path`` prepared for ``precision``, loaded once per process.

    The cache is keyed by path, size and modification time, so a checkpoint
    rewritten in place is loaded again; it holds one checkpoint (the last).
    """
    stat = os.stat(path)
    key = (os.fspath(path), stat.st_size, stat.st_mtime_ns, str(device), precision.value)
    with _LOCK:
        if key not in _CACHE:
            _CACHE.clear()
            _CACHE[key] = prepare_checkpoint(path, torch.device(device), precision)
            _LOADS[os.fspath(path)] += 1
        return _CACHE[key]


def checkpoint_loads() -> dict[str, int]:
    """Return how many times this process loaded each checkpoint (for monitoring)."""
    return dict(_LOADS)


def run_scene_task(task: SceneTask, checkpoint: Checkpoint | None = None) -> int:
    """Predict one scene and write its part; run on a worker or in this process.

    Args:
        task: The scene.
        checkpoint: A checkpoint already loaded in this process; without
            it, :func:`worker_checkpoint` loads ``task.checkpoint`` once.

    Returns:
        The scene index (the pixels are in the part file).

    """
    if task.torch_threads is not None and torch.get_num_threads() != task.torch_threads:
        torch.set_num_threads(task.torch_threads)
    device = resolve_device(task.device)
    settings = task.settings.on(device)
    loaded = checkpoint or worker_checkpoint(task.checkpoint, device, settings.precision)
    config = loaded.config
    with block_cache(GDAL_CACHE_MB), \
            RasterInput.open(task.source, config.bands, config.normalization,
                             task.bands, task.nodata) as raster:
        prediction = predict_scene(loaded.model, raster, task.scene, settings, device,
                                   with_probabilities=task.probabilities)
        transform = core_transform(raster.dataset.transform, task.scene.core)
    scaled = None
    if task.probabilities:
        scaled = scaled_probabilities(prediction.probabilities, prediction.valid)
    write_part(task.part, prediction.classes, scaled, transform)
    return task.scene.index


@dataclass
class SceneFailure:
    """A scene task that raised.

    Attributes:
        task: The scene.
        error: What it raised.

    """

    task: SceneTask
    error: BaseException

    def message(self) -> str:
        """One line: the scene and the first line of its error."""
        text = str(self.error).strip().splitlines()
        first = text[0] if text else "no message"
        if not isinstance(self.error, GLNetGeoError):
            first = f"{type(self.error).__name__}: {first}"
        return f"{self.task.describe()} failed: {first}"


def failure_error(failures: Sequence[SceneFailure]) -> GLNetGeoError:
    """Build the one-line error reported when scenes failed."""
    more = f" (and {len(failures) - 1} more failed scene(s))" if len(failures) > 1 else ""
    return GLNetGeoError(f"{failures[0].message()}{more}; finished scenes are kept, rerun with "
                         "--resume to compute only the missing ones")


def run_tasks(tasks: Sequence[SceneTask], client: Client | None = None,
              checkpoint: Checkpoint | None = None,
              progress: bool | None = None) -> list[SceneFailure]:
    """Run scene tasks on Dask (``client``) or one after the other here.

    Every task runs even when others fail; a keyboard interrupt stops the run
    (finished parts stay on disk).

    Args:
        tasks: The scenes to predict.
        client: A Dask client; None runs the tasks in this process.
        checkpoint: The loaded checkpoint, for tasks run in this process.
        progress: Show a progress bar over scenes (default: only on a terminal).

    Returns:
        The failed tasks, in task order.

    """
    failures: list[SceneFailure] = []
    with progress_bar(len(tasks), "scenes", "scene", progress) as bar:
        if client is None:
            for task in tasks:
                try:
                    run_scene_task(task, checkpoint)
                except Exception as exc:  # reported together once every scene ran
                    failures.append(SceneFailure(task, exc))
                bar.update()
            return failures
        from distributed import as_completed

        futures = {client.submit(run_scene_task, task, pure=False,
                                 key=f"glnet-scene-{Path(task.part).parent.name}-"
                                     f"{task.scene.index}-{os.urandom(4).hex()}"): i
                   for i, task in enumerate(tasks)}
        failed: dict[int, BaseException] = {}
        for future in as_completed(futures):
            if future.status == "error":
                failed[futures[future]] = future.exception()
            bar.update()
    return [SceneFailure(tasks[i], failed[i]) for i in sorted(failed)]


def resolved_settings(settings: SceneSettings, device: str,
                      cluster: Cluster | None) -> SceneSettings:
    """Resolve the batch size and precision where the model runs (:meth:`SceneSettings.on`).

    In this process and on a local cluster, for this machine's ``device``; on
    an existing cluster (``cluster.scheduler``), on one of its workers
    (the workers of one cluster are assumed alike).

    Raises:
        InputError: A precision the (worker's) device cannot run.

    """
    if cluster is None or cluster.scheduler is None:
        return _settings_on(settings, device)
    with dask_client(cluster) as client:
        return client.submit(_settings_on, settings, device, pure=False).result()


def _settings_on(settings: SceneSettings, device: str) -> SceneSettings:
    return settings.on(resolve_device(device))


def checkpoint_identity(checkpoint: Checkpoint | str | os.PathLike) -> dict[str, Any]:
    """Describe a checkpoint for a manifest: its file (path, size, mtime) or its weights' hash."""
    if isinstance(checkpoint, Checkpoint):
        digest = hashlib.sha256()
        for name, tensor in sorted(checkpoint.model.state_dict().items()):
            digest.update(name.encode())
            digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
        return {"sha256": digest.hexdigest(), "config": checkpoint.config.to_dict()}
    path = Path(checkpoint).resolve()
    stat = path.stat()
    return {"path": os.fspath(path), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def _input_identity(source: str) -> dict[str, Any]:
    if source.startswith("/vsi") or "://" in source:
        return {"path": source}
    path = Path(source).resolve()
    stat = path.stat()
    return {"path": os.fspath(path), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


@dataclass
class _Job:
    """One input of a run: its outputs, its scenes and its part store."""

    source: str
    plan: OutputPlan
    scenes: list[Scene] = field(default_factory=list)
    store: PartStore | None = None
    tags: dict[str, str] = field(default_factory=dict)
    finished: bool = False
    resumed: int = 0


def predict_in_parts(checkpoint: Checkpoint | str | os.PathLike, sources: Sequence[str],
                     plans: Sequence[OutputPlan], options: PredictOptions,
                     cluster: Cluster | None = None) -> list[PredictedRaster]:
    """Predict inputs scene by scene through parts, on Dask or in this process.

    The outputs are the files :func:`glnet_geo.predict.predict_raster`
    writes. Use :func:`glnet_geo.predict.predict_raster` or
    :func:`glnet_geo.predict.predict_rasters` with ``workers``,
    ``scheduler`` or ``resume``; they call this.

    Args:
        checkpoint: A checkpoint path (required with a cluster) or a loaded
            :class:`Checkpoint`.
        sources: The input rasters.
        plans: The outputs of each input.
        options: How to predict. With ``options.resume``, inputs whose
            outputs exist and scenes already finished are skipped;
            ``options.overwrite`` also replaces parts of a run with other
            settings. The precision is resolved where the model runs
            (:func:`resolved_settings`).
        cluster: Where tasks run (None: in this process).

    Returns:
        What was written for each input (``scenes`` is 0 for an input
        skipped as finished; ``resumed`` counts the scenes taken from an
        interrupted run).

    Raises:
        GLNetGeoError: Some scenes failed (named in the message); the other
            inputs are published and finished scenes are kept.

    """
    resume, overwrite = options.resume, options.overwrite
    torch_device = resolve_device(options.device) if cluster is None else None
    if cluster is not None and isinstance(checkpoint, Checkpoint):
        raise InputError("a cluster loads the checkpoint on its workers; pass the checkpoint's "
                         "path instead of a loaded Checkpoint")
    jobs = []
    for source, plan in zip(sources, plans, strict=True):
        job = _Job(os.fspath(source), plan, finished=resume and plan.published())
        if not job.finished:
            plan.check(job.source, overwrite, resume)
        jobs.append(job)
    config = (checkpoint.config if isinstance(checkpoint, Checkpoint)
              else ModelConfig.from_dict(read_checkpoint(checkpoint, mmap=True)["config"]))
    settings = resolved_settings(options.scene_settings(config), options.device, cluster)
    loaded = (prepare_checkpoint(checkpoint, torch_device, settings.precision)
              if cluster is None else None)
    scene_size, halo = options.scene_grid_sizes(config)
    identity = checkpoint_identity(checkpoint)
    path = None if isinstance(checkpoint, Checkpoint) else os.fspath(Path(checkpoint).resolve())
    tasks: list[SceneTask] = []
    for job in jobs:
        if job.finished:
            continue
        with RasterInput.open(job.source, config.bands, config.normalization, options.bands,
                              options.nodata) as raster:
            warn_if_unlike_training(config.imagery, raster, job.source)
            job.scenes = scene_grid(raster.height, raster.width, scene_size, halo)
            chosen = raster.bands
        with_probabilities = job.plan.needs_probabilities
        manifest = {"input": _input_identity(job.source), "checkpoint": identity,
                    "settings": {k: str(v) for k, v in asdict(settings).items()},
                    "scene_size": scene_size, "halo": halo, "bands": chosen,
                    "nodata": options.nodata, "probabilities": with_probabilities,
                    "scenes": [[s.core.col_off, s.core.row_off, s.core.width, s.core.height]
                               for s in job.scenes]}
        job.store = PartStore.prepare(job.plan.classes, job.scenes, manifest, resume, overwrite)
        job.tags = output_tags(job.source, settings, scene_size, halo)
        job.resumed = len(job.store.done())
        tasks.extend(SceneTask(checkpoint=path or "", source=job.source, bands=options.bands,
                               scene=scene, scenes=len(job.scenes), settings=settings,
                               device=str(torch_device or options.device),
                               part=os.fspath(job.store.path(scene.index)),
                               probabilities=with_probabilities,
                               torch_threads=cluster.torch_threads if cluster else None,
                               nodata=options.nodata)
                     for scene in job.store.missing())
    if tasks and cluster is not None:
        with dask_client(cluster) as client:
            failures = run_tasks(tasks, client, progress=options.progress)
    else:
        failures = run_tasks(tasks, None, loaded, options.progress)
    failed_sources = {f.task.source for f in failures}
    results = []
    for job in jobs:
        if job.source in failed_sources:
            continue
        result = (PredictedRaster.planned(job.source, job.plan) if job.finished else
                  _assemble(job, config, settings, options))
        if job.plan.stac is not None:
            result.stac = write_prediction_item(job.plan.stac, result, checkpoint)
        results.append(result)
    if failures:
        raise failure_error(failures)
    return results


def _assemble(job: _Job, config: ModelConfig, settings: SceneSettings,
              options: PredictOptions) -> PredictedRaster:
    """Write an input's outputs from its finished parts, then remove the parts."""
    with block_cache(GDAL_CACHE_MB), \
            RasterInput.open(job.source, config.bands, config.normalization, options.bands,
                             options.nodata) as raster:
        cores = (Core(s.core, *job.store.read(s)) for s in job.scenes)
        result = write_outputs(job.source, raster, config, cores, job.tags, job.plan,
                               overwrite=options.overwrite or options.resume,
                               creation_options=options.creation_options)
    result.scenes, result.resumed = len(job.scenes), job.resumed
    result.precision = settings.precision.value
    job.store.remove()
    return result
