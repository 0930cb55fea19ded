"""Writing rasters block by block and publishing them as Cloud-Optimized GeoTIFFs.

:class:`CogWriter` writes windows into a hidden, tiled, compressed GeoTIFF
next to the final path, converts it into a COG with overviews (GDAL's COG
driver, through :func:`rasterio.shutil.copy`) under another hidden name, and only
then moves it to its final name (:func:`os.replace`, atomic on one
filesystem). Until :meth:`CogWriter.publish` nothing exists under the final
name; :meth:`CogWriter.discard` (run on any exception, Ctrl-C and SIGTERM
included) removes every temporary file, and the temporaries a killed run left
are removed by the next writer of the same output (:mod:`glnet_geo.io.staging`).
Without ``overwrite``, :meth:`CogWriter.publish` refuses an output that another
run published meanwhile; a write refused for space is one :class:`OutputError`
(:func:`writing`).

:func:`class_raster_writer` and :func:`probability_raster_writer` configure it
for the two rasters ``predict`` writes.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import rasterio.shutil
from affine import Affine
from rasterio.crs import CRS
from rasterio.enums import ColorInterp
from rasterio.windows import Window

from glnet_geo.classes import NO_CLASS
from glnet_geo.errors import InputError, OutputError, OutputExistsError
from glnet_geo.io.staging import Staging

#: Tile side of the temporary and the final GeoTIFFs.
BLOCK_SIZE = 512
#: Band-1 tag of the class raster that holds the class names as a JSON list.
CLASS_NAMES_TAG = "class_names"


def check_output(path: str | os.PathLike, overwrite: bool = False) -> Path:
    """Check that ``path`` can be written, before any work is done.

    Args:
        path: The final output path.
        overwrite: Whether an existing file may be replaced.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        OutputExistsError: ``path`` exists and ``overwrite`` is false.
        OutputError: ``path`` is a directory, or its directory is missing or
            not writable.

    """
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"output {path} is a directory; give a file name")
    if path.exists() and not overwrite:
        raise OutputExistsError(f"output {path} already exists; pass --overwrite to replace it")
    parent = path.parent
    if not parent.is_dir():
        raise OutputError(f"output directory {parent} does not exist; create it or choose "
                          "another output path")
    try:
        with tempfile.NamedTemporaryFile(dir=parent, prefix=".glnet-write-test-"):
            pass
    except OSError as exc:
        raise OutputError(f"cannot write in output directory {parent} ({exc.strerror}); "
                          "choose a writable directory") from None
    return path


#: Errnos of a write that failed for want of space (or of a size limit or quota).
NO_SPACE_ERRNOS = (errno.ENOSPC, errno.EFBIG, errno.EDQUOT)


#: Below this much free space (MB), a failed write is taken for a full file system.
FULL_BELOW_MB = 64


def no_space_error(path: str | os.PathLike, reason: str, full: bool = False) -> OutputError:
    """Build the one-line error of a write that failed on a full (or limited) file system.

    Args:
        path: The output being written.
        reason: What the system or GDAL said.
        full: The system said so (``ENOSPC``); else the free space decides.

    """
    path = Path(path)
    directory = path.parent if str(path.parent) else Path(".")
    try:
        free_mb = shutil.disk_usage(directory).free / 2**20
    except OSError:
        free_mb = 0.0
    if full or free_mb < FULL_BELOW_MB:
        what = f"no space left on {directory} ({free_mb:.0f} MB free) while writing {path.name}"
    else:
        what = (f"cannot write {path.name} in {directory}: the file system refused it though "
                f"{free_mb:.0f} MB are free (a file size limit or a quota?)")
    return OutputError(f"{what}: {reason}; free some space or write elsewhere; the temporary "
                       "files were removed and no existing output was touched")


@contextmanager
def writing(path: str | os.PathLike) -> Iterator[None]:
    """Turn a failed write for ``path`` (a full disk, a size limit) into one :class:`OutputError`.

    GDAL reports a failed raster write as ``RasterioIOError("Write failed
    ...")`` chained to its reason, a failed vector write as one of pyogrio's
    errors (SQLite's "disk I/O error" for a GeoPackage); Python writes raise
    :class:`OSError` with ``ENOSPC``, ``EFBIG`` or ``EDQUOT``.
    """
    from rasterio._err import CPLE_BaseError
    from rasterio.errors import RasterioIOError

    from glnet_geo.io.reader import gdal_reason

    try:
        yield
    except (RasterioIOError, CPLE_BaseError) as exc:
        raise no_space_error(path, f'GDAL says "{gdal_reason(exc)}"') from None
    except OSError as exc:
        if exc.errno not in NO_SPACE_ERRNOS:
            raise
        raise no_space_error(path, exc.strerror or str(exc),
                             full=exc.errno == errno.ENOSPC) from None
    except RuntimeError as exc:  # pyogrio's write errors (FeatureError, DataSourceError, ...)
        if not type(exc).__module__.startswith("pyogrio"):
            raise
        first = str(exc).strip().splitlines()
        raise no_space_error(path, f'GDAL says "{first[0] if first else type(exc).__name__}"'
                             ) from None


#: Suffixes of the GeoTIFFs ``predict`` writes (class and probabilities rasters).
GEOTIFF_SUFFIXES = (".tif", ".tiff")


def check_geotiff_suffix(path: str | os.PathLike, role: str = "class raster",
                         option: str = "-o") -> None:
    """Refuse to write a GeoTIFF under a name that says otherwise (``classes.png``, ``classes``).

    Raises:
        OutputError: The suffix is not ``.tif`` or ``.tiff``.

    """
    path = Path(path)
    if path.suffix.lower() in GEOTIFF_SUFFIXES:
        return
    fixed = path.with_name(f"{path.stem if path.suffix else path.name}.tif")
    what = f"suffix {path.suffix!r}" if path.suffix else "no suffix"
    hint = " (the PNG quick-look is --preview)" if path.suffix.lower() == ".png" else ""
    raise OutputError(f"{option} {path}: the {role} is a Cloud-Optimized GeoTIFF but the name "
                      f"has {what}; name it {fixed}{hint}")


class CogWriter:
    """A raster written window by window, published as a COG only when complete.

    Args:
        path: Final path of the Cloud-Optimized GeoTIFF.
        crs: Coordinate reference system (copied from the input).
        transform: Affine geotransform (copied from the input).
        width: Width in pixels.
        height: Height in pixels.
        count: Number of bands.
        dtype: Pixel type.
        nodata: Nodata value, if any.
        internal_mask: Write an internal (per-dataset) mask band instead of,
            or as well as, a nodata value.
        colormap: Palette of band 1: value -> RGBA.
        tags: Dataset metadata.
        band_tags: Metadata per band (1-based band index -> tags).
        band_descriptions: One description per band.
        overview_resampling: Resampling of the COG's overviews.
        scales: One scale per band (physical value = pixel * scale).
        sidecars: Text files published with the COG (path -> content), e.g.
            its QGIS style; each is written under a hidden name and renamed
            right after the COG.
        creation_options: GDAL creation options of the COG driver, over
            ours (see :func:`check_creation_options`).

    """

    def __init__(self, path: str | os.PathLike, *, crs: CRS | None, transform: Affine,
                 width: int, height: int, count: int, dtype: str = "uint8",
                 nodata: float | None = None, internal_mask: bool = False,
                 colormap: dict[int, tuple[int, int, int, int]] | None = None,
                 tags: dict[str, str] | None = None,
                 band_tags: dict[int, dict[str, str]] | None = None,
                 band_descriptions: Sequence[str] | None = None,
                 overview_resampling: str = "nearest",
                 scales: Sequence[float] | None = None,
                 sidecars: dict[Path, str] | None = None,
                 creation_options: Mapping[str, str] | None = None) -> None:
        self.path = Path(path)
        self.profile: dict[str, Any] = {
            "driver": "GTiff", "crs": crs, "transform": transform, "width": width,
            "height": height, "count": count, "dtype": dtype, "nodata": nodata,
            "tiled": True, "blockxsize": BLOCK_SIZE, "blockysize": BLOCK_SIZE,
            "compress": "DEFLATE", "zlevel": 1, "BIGTIFF": "IF_SAFER",
        }
        self.internal_mask = internal_mask
        self.colormap = colormap
        self.tags = tags or {}
        self.band_tags = band_tags or {}
        self.band_descriptions = list(band_descriptions or [])
        self.overview_resampling = overview_resampling
        self.scales = list(scales) if scales is not None else None
        self.sidecars = dict(sidecars or {})
        self.creation_options = {k.upper(): str(v) for k, v in (creation_options or {}).items()}
        self._staging: Staging | None = None
        self._partial: Path | None = None
        self._cog: Path | None = None
        self._dataset: rasterio.io.DatasetWriter | None = None
        self._published = False

    @property
    def temporary_paths(self) -> tuple[Path, Path]:
        """Return the hidden files this writer creates next to its final path (once open)."""
        if self._partial is None:
            raise RuntimeError("CogWriter.temporary_paths asked for before open()")
        return self._partial, self._cog

    def __enter__(self) -> CogWriter:
        self.open()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        if exc_type is not None:
            self.discard()

    def open(self) -> None:
        """Create the temporary tiled GeoTIFF and write its metadata.

        The temporaries that an ended run (killed, or out of power) left for
        the same output are removed first (:class:`~glnet_geo.io.staging.Staging`).
        """
        self._staging = Staging(self.path)
        self._partial = self._staging.path(".partial.tif")
        self._cog = self._staging.path(".cog.tif")
        with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True), writing(self.path):
            dataset = rasterio.open(self._partial, "w", **self.profile)
        self._dataset = dataset
        if self.colormap is not None:
            dataset.colorinterp = [ColorInterp.palette]
            dataset.write_colormap(1, self.colormap)
        if self.tags:
            dataset.update_tags(**self.tags)
        for band, tags in self.band_tags.items():
            dataset.update_tags(band, **tags)
        for band, description in enumerate(self.band_descriptions, start=1):
            dataset.set_band_description(band, description)
        if self.scales is not None:
            dataset.scales = self.scales

    def write(self, array: np.ndarray, window: Window, mask: np.ndarray | None = None) -> None:
        """Write ``array`` ((count, h, w) or (h, w)) into ``window``.

        Args:
            array: Pixel values.
            window: Where they go.
            mask: (h, w) validity for the internal mask (required when the
                writer has one).

        """
        if self._dataset is None:
            raise RuntimeError("CogWriter.write called before open()")
        if array.ndim == 2:
            array = array[None]
        if self.internal_mask and mask is None:
            raise ValueError("this writer has an internal mask; pass mask=")
        with writing(self.path):
            self._dataset.write(array, window=window)
            if self.internal_mask:
                self._dataset.write_mask(mask.astype(np.uint8) * 255, window=window)

    def finish(self) -> None:
        """Close the temporary GeoTIFF and convert it into a COG with overviews.

        GDAL's COG driver copies the pixels, the metadata, the palette and the
        internal mask and builds the overviews, compressing on every core (the
        model is idle by then). The COG is validated with
        :func:`rio_cogeo.cogeo.cog_validate`; it stays under a hidden name
        until :meth:`publish`.
        """
        if self._dataset is None:
            raise RuntimeError("CogWriter.finish called before open()")
        dataset, self._dataset = self._dataset, None
        with writing(self.path):
            dataset.close()
        options = {"BLOCKSIZE": str(BLOCK_SIZE), "COMPRESS": "DEFLATE", "BIGTIFF": "IF_SAFER",
                   "NUM_THREADS": "ALL_CPUS",
                   "OVERVIEW_RESAMPLING": self.overview_resampling.upper(),
                   **self.creation_options}
        with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True), writing(self.path):
            rasterio.shutil.copy(self._partial, self._cog, driver="COG", **options)
        self._partial.unlink(missing_ok=True)
        from rio_cogeo.cogeo import cog_validate  # 0.1 s and 21 MiB, after the scenes

        valid, errors, _ = cog_validate(self._cog, quiet=True)
        if not valid:
            raise OutputError(f"the COG written for {self.path} is not valid ({errors}); "
                              "this is a bug, please report it")

    def publish(self, overwrite: bool = True) -> Path:
        """Move the finished COG to its final name (atomic) and return that path.

        The sidecar files follow, each written whole under a hidden name first.

        Args:
            overwrite: Whether a file that now exists under the final name
                may be replaced. Without it the COG is linked there
                (:func:`os.link`, which fails on an existing name), so a
                file that another run published meanwhile is never replaced.

        Raises:
            OutputExistsError: ``overwrite`` is false and the final name
                exists (another run wrote it while this one was running).

        """
        from glnet_geo.styles import write_text

        publish_file(self._cog, self.path, overwrite)
        for sidecar, text in self.sidecars.items():
            write_text(sidecar, text)
        self._published = True
        if self._staging is not None:
            self._staging.close()
        return self.path

    def discard(self) -> None:
        """Close and remove every temporary file; safe to call more than once."""
        if self._dataset is not None:
            try:
                self._dataset.close()
            except Exception:  # a failed flush (a full disk) is being discarded
                pass
            finally:
                self._dataset = None
        if self._staging is not None:
            self._staging.close()


def publish_file(temporary: Path, final: Path, overwrite: bool) -> None:
    """Move a finished temporary file to its final name, atomically.

    With ``overwrite`` it is :func:`os.replace`; without, :func:`os.link`
    then unlink, which refuses an existing final name at the instant of the
    move (where the file system has no hard links, :func:`os.replace` after
    a last check).

    Raises:
        OutputExistsError: ``overwrite`` is false and ``final`` exists.

    """
    if overwrite:
        os.replace(temporary, final)
        return
    try:
        os.link(temporary, final)
    except FileExistsError:
        raise OutputExistsError(f"output {final} appeared while this run was writing it "
                                "(another run writing the same output?); it was left as it "
                                "is: pass --overwrite to replace it") from None
    except OSError:  # no hard links here (FAT, some network shares)
        if final.exists():
            raise OutputExistsError(f"output {final} appeared while this run was writing it; "
                                    "it was left as it is: pass --overwrite to replace it"
                                    ) from None
        os.replace(temporary, final)
        return
    temporary.unlink()


class _GDALMessages(logging.Handler):
    """Collects the warnings GDAL reports through rasterio's logger."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage().split(" in ", 1)[-1])


def check_creation_options(options: Mapping[str, str]) -> dict[str, str]:
    """Check GDAL creation options for the class COG, as GDAL's COG driver checks them.

    A tiny raster is converted in memory with ``options``; any option GDAL
    reports as unknown or any value it rejects is an error, before any work.

    Args:
        options: Option name -> value (``--co NAME=VALUE``), e.g.
            ``{"COMPRESS": "ZSTD", "LEVEL": "9"}``.

    Returns:
        The options with upper-case names.

    Raises:
        InputError: An option the COG driver does not have, or a value it
            rejects.

    """
    from rasterio.io import MemoryFile

    options = {str(k).upper(): str(v) for k, v in options.items()}
    if not options:
        return options
    logger = logging.getLogger("rasterio._env")
    collect, propagate = _GDALMessages(), logger.propagate
    logger.addHandler(collect)
    logger.propagate = False
    target = f"/vsimem/.glnet-co-check-{uuid.uuid4().hex}.tif"
    failure = None
    try:
        with MemoryFile() as memory:
            with memory.open(driver="GTiff", width=16, height=16, count=1, dtype="uint8",
                             crs="EPSG:3857", transform=Affine(1, 0, 0, 0, -1, 16)) as src:
                src.write(np.zeros((1, 16, 16), np.uint8))
                src.write_colormap(1, {0: (0, 0, 0, 255)})
            try:
                rasterio.shutil.copy(memory.name, target, driver="COG", **options)
            except rasterio.errors.RasterioError as exc:
                failure = str(exc)
    finally:
        logger.removeHandler(collect)
        logger.propagate = propagate
        if rasterio.shutil.exists(target):
            rasterio.shutil.delete(target)
    problem = failure or next(iter(collect.messages), None)
    if problem is not None:
        given = " ".join(f"--co {k}={v}" for k, v in options.items())
        raise InputError(f"{given}: {problem.rstrip('.')}; see the creation options of GDAL's "
                         "COG driver (https://gdal.org/en/stable/drivers/raster/cog.html)")
    return options


def palette(class_colors: Sequence[Sequence[int]]) -> dict[int, tuple[int, int, int, int]]:
    """Build a GDAL colour table: one opaque colour per class, nodata transparent."""
    table = {i: (int(r), int(g), int(b), 255) for i, (r, g, b) in enumerate(class_colors)}
    table[NO_CLASS] = (0, 0, 0, 0)
    return table


def class_raster_writer(path: str | os.PathLike, like: rasterio.DatasetReader,
                        class_names: Sequence[str], class_colors: Sequence[Sequence[int]],
                        tags: dict[str, str] | None = None,
                        creation_options: Mapping[str, str] | None = None) -> CogWriter:
    """Create the writer of the uint8 class raster on the grid of ``like``.

    Band 1 carries the checkpoint's palette, the description ``class`` and the
    tag ``class_names`` (a JSON list, index = class id) plus one tag
    ``class_<id>`` per class; nodata is 255; overviews use ``mode``. Published
    with it: a QGIS style ``<stem>.qml`` (paletted, class names as labels) and
    GDAL's ``<name>.aux.xml`` with the category names and a raster attribute
    table (:mod:`glnet_geo.styles`). ``creation_options`` (checked with
    :func:`check_creation_options`) override the COG driver's settings.
    """
    from glnet_geo.styles import (
        aux_xml_path,
        class_styles,
        pam_categories,
        qml_path,
        raster_qml,
    )

    styles = class_styles(class_names, class_colors)
    sidecars = {qml_path(path): raster_qml(styles), aux_xml_path(path): pam_categories(styles)}
    band_tags = {CLASS_NAMES_TAG: json.dumps(list(class_names))}
    band_tags.update({f"class_{i}": name for i, name in enumerate(class_names)})
    return CogWriter(path, crs=like.crs, transform=like.transform, width=like.width,
                     height=like.height, count=1, dtype="uint8", nodata=NO_CLASS,
                     colormap=palette(class_colors), tags=tags, band_tags={1: band_tags},
                     band_descriptions=["class"], overview_resampling="mode",
                     sidecars=sidecars, creation_options=creation_options)


def scaled_probabilities(probabilities: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Scale ``(K, h, w)`` probabilities to uint8 ``round(255 * p)``, 0 where invalid."""
    scaled = np.rint(probabilities * 255).astype(np.uint8)
    scaled[:, ~valid] = 0
    return scaled


def probability_raster_writer(path: str | os.PathLike, like: rasterio.DatasetReader,
                              class_names: Sequence[str],
                              tags: dict[str, str] | None = None) -> CogWriter:
    """Create the writer of the per-class confidence raster on the grid of ``like``.

    One uint8 band per class holds ``round(255 * p)``; bands are described by
    their class names and scaled by 1/255 (so GDAL and QGIS show
    probabilities). Masked pixels are 0 and flagged by an internal mask (no
    nodata value, since every byte is a valid probability); overviews use
    ``average``.
    """
    scale = {"scale": "probability = value / 255"}
    return CogWriter(path, crs=like.crs, transform=like.transform, width=like.width,
                     height=like.height, count=len(class_names), dtype="uint8",
                     internal_mask=True, tags={**(tags or {}), **scale},
                     band_tags={i + 1: {"class_id": str(i)} for i in range(len(class_names))},
                     band_descriptions=list(class_names), overview_resampling="average",
                     scales=[1 / 255] * len(class_names))
