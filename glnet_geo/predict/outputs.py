"""The outputs of a prediction: planned and checked before any model runs, then written.

An :class:`OutputPlan` names every output of one input (class raster,
probabilities, preview, polygons, STAC Item); :meth:`OutputPlan.check` refuses
a bad plan (unknown polygon format, wrong suffix, existing file, an output on
the input...) before the checkpoint is loaded. :func:`write_outputs` writes
the rasters from a stream of scene :class:`Core` s through windowed writes and
publishes the Cloud-Optimized GeoTIFFs only when complete, then the preview
and the polygons.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
from rasterio.windows import Window

import glnet_geo
from glnet_geo.checkpoint import ModelConfig
from glnet_geo.classes import NO_CLASS
from glnet_geo.errors import InputError, OutputError
from glnet_geo.io.parts import parts_directory
from glnet_geo.io.reader import RasterInput, check_georeferencing, open_dataset
from glnet_geo.io.writer import (
    CogWriter,
    check_geotiff_suffix,
    check_output,
    class_raster_writer,
    probability_raster_writer,
)
from glnet_geo.predict.settings import SceneSettings

if TYPE_CHECKING:
    from glnet_geo.vectorize import VectorFormat


@dataclass(frozen=True)
class OutputPlan:
    """Every output of one input's prediction (None where not asked for).

    Attributes:
        classes: The class raster (uint8 COG).
        probabilities: The per-class confidence raster (COG).
        preview: The quick-look PNG.
        polygons: The polygons (format from the extension).
        stac: The STAC Item (JSON).

    """

    classes: Path
    probabilities: Path | None = None
    preview: Path | None = None
    polygons: Path | None = None
    stac: Path | None = None

    @classmethod
    def of(cls, classes: str | os.PathLike, probabilities: str | os.PathLike | None = None,
           preview: str | os.PathLike | None = None, polygons: str | os.PathLike | None = None,
           stac: str | os.PathLike | None = None) -> OutputPlan:
        """Build a plan from paths given as strings or paths."""
        return cls(*(None if p is None else Path(p)
                     for p in (classes, probabilities, preview, polygons, stac)))

    @property
    def files(self) -> list[Path]:
        """The outputs asked for, STAC Item last."""
        return [p for p in (getattr(self, f.name) for f in fields(self)) if p is not None]

    @property
    def needs_probabilities(self) -> bool:
        """Whether an output is made from the blended probabilities, not the classes alone.

        The scenes then carry their probabilities to :func:`write_outputs`
        (and into the parts of a distributed run).
        """
        return self.probabilities is not None

    @property
    def polygon_format(self) -> VectorFormat | None:
        """The format of the polygons, from their extension (None without polygons).

        Raises:
            InputError: An unknown format.

        """
        from glnet_geo.vectorize import resolve_format  # geopandas loads only when needed

        return None if self.polygons is None else resolve_format(self.polygons)

    def check(self, source: str, overwrite: bool = False, resume: bool = False) -> None:
        """Check every output before any work: named for what it holds, writable, unique.

        GeoTIFFs end in ``.tif``, the preview in ``.png``, the polygons in a
        known format's extension; no output exists unless ``overwrite`` (or
        ``resume``, for an interrupted run's outputs and the STAC Item), none
        is the input or another output, and the input can be placed (a
        geotransform, and a CRS for polygons).

        Raises:
            InputError: An unknown polygon format, or an input without georeferencing.
            OutputExistsError: An output exists.
            OutputError: A wrong suffix, a missing or read-only directory, or
                outputs sharing a path.

        """
        rewrite = overwrite or (resume and parts_directory(self.classes).exists())
        check_geotiff_suffix(self.classes)
        if self.probabilities is not None:
            check_geotiff_suffix(self.probabilities, "probabilities raster", "--probabilities")
        if self.preview is not None and self.preview.suffix.lower() != ".png":
            raise OutputError(f"--preview {self.preview}: the preview is a PNG; name it "
                              f"{self.preview.with_suffix('.png')}")
        if self.polygons is not None:
            from glnet_geo import vectorize

            vectorize.check_output(self.polygons, self.polygon_format, rewrite)
        if self.stac is not None:
            check_output(self.stac, overwrite=overwrite or resume)
            if self.stac.resolve() in {p.resolve() for p in self.files[:-1]}:
                raise OutputError(f"--stac {self.stac} is also another output; give the STAC "
                                  "Item its own path, e.g. classes.json")
        with open_dataset(source) as dataset:
            check_georeferencing(dataset, polygons=self.polygons is not None)
        given = [p for p in self.files if p != self.stac]
        for path in given:
            check_output(path, overwrite=rewrite)
            if not source.startswith("/vsi") and Path(source).exists() and \
                    path.resolve() == Path(source).resolve():
                raise OutputError(f"output {path} is the input raster; choose another output "
                                  "path")
        resolved = [p.resolve() for p in given]
        if len(set(resolved)) != len(resolved):
            raise OutputError(f"two outputs share a path ({', '.join(map(str, given))}); give "
                              "each output its own path")

    def published(self) -> bool:
        """Whether a previous run published every output but the STAC Item."""
        return not parts_directory(self.classes).exists() and \
            all(p.exists() for p in self.files if p != self.stac)


def directory_plans(inputs: Sequence[str | os.PathLike], output: str | os.PathLike, *,
                    probabilities: str | os.PathLike | None = None,
                    preview: str | os.PathLike | None = None,
                    polygons: str | os.PathLike | None = None, polygon_suffix: str = ".gpkg",
                    stac: str | os.PathLike | None = None) -> list[OutputPlan]:
    """Plan one file per input in each output directory, named after the input.

    Each input ``<stem>.<ext>`` gives ``output/<stem>.tif`` (and
    ``probabilities/<stem>.tif``, ``preview/<stem>.png``,
    ``polygons/<stem><polygon_suffix>``, ``stac/<stem>.json``); the
    directories are created.

    Raises:
        InputError: Two inputs share a stem.
        OutputError: A directory is a file or cannot be created.

    """
    columns = []
    for directory, suffix in ((output, ".tif"), (probabilities, ".tif"), (preview, ".png"),
                              (polygons, polygon_suffix), (stac, ".json")):
        if directory is None:
            columns.append([None] * len(inputs))
            continue
        _output_directory(directory)
        columns.append(output_paths(inputs, directory, suffix))
    return [OutputPlan(*paths) for paths in zip(*columns, strict=True)]


def output_paths(inputs: Sequence[str | os.PathLike], directory: str | os.PathLike,
                 suffix: str) -> list[Path]:
    """Name one path per input in ``directory`` after the input: ``<stem><suffix>``.

    Raises:
        InputError: Two inputs share a stem (their outputs would collide).

    """
    stems: dict[str, str] = {}
    for source in inputs:
        stem = Path(os.fspath(source)).stem
        if stem in stems:
            raise InputError(f"inputs {stems[stem]} and {os.fspath(source)} would both write "
                             f"{stem}{suffix}; rename one or predict them separately")
        stems[stem] = os.fspath(source)
    return [Path(directory) / f"{stem}{suffix}" for stem in stems]


@contextmanager
def directories_kept_on_success(*directories: str | os.PathLike | None) -> Iterator[None]:
    """Remove the output directories a failed run created, where it left them empty.

    Of ``directories`` (None entries ignored), those missing now and their
    missing parents are removed again, deepest first, if the ``with`` block
    fails: a bad input found after :func:`directory_plans` made the
    directories leaves nothing behind. A directory holding anything is kept.
    """
    created: list[Path] = []
    for directory in directories:
        if directory is None:
            continue
        path = Path(directory).absolute()
        while not path.exists() and path not in created:
            created.append(path)
            path = path.parent
    try:
        yield
    except BaseException:
        for path in sorted(created, key=lambda p: len(p.parts), reverse=True):
            with suppress(OSError):
                path.rmdir()
        raise


def _output_directory(path: str | os.PathLike) -> Path:
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OutputError(f"output {path} is a file; with several inputs the output is a "
                          "directory, give a directory path")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create output directory {path} ({exc.strerror}); choose a "
                          "writable location") from None
    return path


@dataclass
class PredictedRaster:
    """What :func:`~glnet_geo.predict.predict_raster` wrote.

    Attributes:
        input: The input raster.
        classes: The class raster (COG).
        probabilities: The probabilities raster (COG), if asked for.
        preview: The quick-look PNG, if asked for.
        polygons: The polygons file, if asked for.
        stac: The STAC Item, if asked for.
        scenes: Number of scenes of the input.
        resumed: Scenes taken from an interrupted run rather than predicted.
        precision: The precision the network computed in.

    """

    input: str
    classes: Path
    probabilities: Path | None = None
    preview: Path | None = None
    polygons: Path | None = None
    stac: Path | None = None
    scenes: int = 0
    resumed: int = 0
    precision: str = ""

    @property
    def files(self) -> list[Path]:
        """The files written, in the order of the fields."""
        return [p for p in (getattr(self, f.name) for f in fields(self))
                if isinstance(p, Path)]

    @classmethod
    def planned(cls, source: str, plan: OutputPlan) -> PredictedRaster:
        """Return what a previous run wrote for ``plan`` (no scene predicted now)."""
        return cls(source, plan.classes, plan.probabilities, plan.preview, plan.polygons)


class Core(NamedTuple):
    """A predicted scene core, ready to write.

    Attributes:
        window: The core on the raster.
        classes: ``(h, w)`` uint8 class ids, 255 where the input is invalid.
        probabilities: ``(K, h, w)`` uint8 probabilities
            (:func:`~glnet_geo.io.writer.scaled_probabilities`), or None.

    """

    window: Window
    classes: np.ndarray
    probabilities: np.ndarray | None


def output_tags(source: str, settings: SceneSettings, scene_size: int,
                halo: int) -> dict[str, str]:
    """Return the dataset metadata of the rasters predicted from ``source``."""
    tags = {"software": f"glnet-geo {glnet_geo.__version__}", "source": Path(source).name,
            "predict_mode": settings.mode.value, "network_mode": settings.network_mode.value,
            "precision": settings.precision.value, "scene_size": str(scene_size),
            "halo": str(halo)}
    if settings.skip_threshold is not None:
        tags["skip_threshold"] = str(settings.skip_threshold)
    return tags


def write_outputs(source: str, raster: RasterInput, config: ModelConfig,
                  cores: Iterable[Core] | Iterator[Core], tags: dict[str, str],
                  plan: OutputPlan, *, overwrite: bool = False,
                  creation_options: Mapping[str, str] | None = None) -> PredictedRaster:
    """Write the outputs of one input from its scene cores, as they come.

    Each core goes through windowed writes into hidden tiled GeoTIFFs, which
    become COGs moved to their final names only once every core is written
    (all temporary files are removed on any error, Ctrl-C included); then the
    preview and the polygons are made from the published class raster (the
    STAC Item, which describes them all, comes last:
    :func:`glnet_geo.predict.stac.write_prediction_item`).

    Args:
        source: The input (named in the metadata).
        raster: The open input (its grid, and the preview's background).
        config: The checkpoint's configuration (class names, colours).
        cores: The predicted cores (e.g. a lazy generator), tiling the raster.
        tags: Dataset metadata of the rasters (see :func:`output_tags`).
        plan: Where to write.
        overwrite: Replace existing outputs.
        creation_options: GDAL creation options of the class COG.

    Returns:
        The paths written (``scenes`` left at 0 for the caller).

    """
    result = PredictedRaster(input=source, classes=plan.classes)
    with ExitStack() as cleanup:
        classes = class_raster_writer(plan.classes, raster.dataset, config.class_names,
                                      config.class_colors, tags,
                                      creation_options=creation_options)
        writers: list[CogWriter] = [classes]
        probabilities = None
        if plan.probabilities is not None:
            probabilities = probability_raster_writer(plan.probabilities, raster.dataset,
                                                      config.class_names, tags)
            writers.append(probabilities)
        for writer in writers:
            cleanup.callback(writer.discard)
            writer.open()
        for core in cores:
            classes.write(core.classes, core.window)
            if probabilities is not None:
                probabilities.write(core.probabilities, core.window,
                                    mask=core.classes != NO_CLASS)
        for writer in writers:
            writer.finish()
        result.classes = classes.publish(overwrite)
        if probabilities is not None:
            result.probabilities = probabilities.publish(overwrite)
    if plan.preview is not None:
        from glnet_geo.preview import write_preview

        result.preview = write_preview(raster, result.classes, plan.preview, config.class_names,
                                       config.class_colors)
    if plan.polygons is not None:
        from glnet_geo.vectorize import vectorize_raster

        result.polygons = Path(vectorize_raster(result.classes, plan.polygons,
                                                probabilities=result.probabilities,
                                                overwrite=overwrite))
    return result

