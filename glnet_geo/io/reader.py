"""Reading a raster the way a checkpoint wants it.

:class:`RasterInput` wraps an open rasterio dataset with the band selection
and normalisation of a checkpoint. It reads two kinds of views, both returned
as normalised float32 arrays with a validity mask:

- :meth:`RasterInput.read_global`: a window downsampled to the global view's
  size by a decimated read (``out_shape``), which GDAL serves from the file's
  overviews where they exist;
- :meth:`RasterInput.read`: a full-resolution window, boundless: pixels outside
  the raster are masked.

Validity is GDAL's dataset mask (nodata values, an alpha band or an internal
mask) combined with finiteness of every selected band. Masked pixels are
filled with 0 after normalisation (the normalised mean), so the network sees
neutral values there; the caller writes nodata over them.
"""

from __future__ import annotations

import functools
import glob
import logging
import os
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import rasterio
from rasterio import windows
from rasterio._err import CPLE_BaseError
from rasterio.enums import ColorInterp, MaskFlags, Resampling
from rasterio.errors import NotGeoreferencedWarning, RasterioIOError
from rasterio.windows import Window

from glnet_geo.errors import InputError, RasterReadError

log = logging.getLogger(__name__)

#: Resampling of the decimated global-view read (GDAL scales the kernel to
#: the decimation factor, so this is an antialiased downsampling).
GLOBAL_RESAMPLING = Resampling.bilinear


def block_cache(megabytes: int) -> rasterio.Env:
    """Return a rasterio environment that caps GDAL's block cache at ``megabytes``.

    rasterio passes an integer ``GDAL_CACHEMAX`` to ``GDALSetCacheMax64``,
    which counts bytes (GDAL's "below 100000 means megabytes" rule applies
    only when GDAL reads the option itself), so ``rasterio.Env(GDAL_CACHEMAX=64)``
    leaves a 64-byte cache and every read decodes its tiles again.
    """
    return rasterio.Env(GDAL_CACHEMAX=megabytes * 2**20)


#: File extensions taken as rasters when an input is a folder.
RASTER_SUFFIXES = (".tif", ".tiff", ".vrt", ".jp2", ".img")


def rasters_in(folder: str | os.PathLike) -> list[str]:
    """Return the rasters of a folder (by extension, see :data:`RASTER_SUFFIXES`), sorted.

    Raises:
        InputError: The folder holds no raster.

    """
    found = sorted(os.fspath(p) for p in Path(folder).iterdir()
                   if p.is_file() and p.suffix.lower() in RASTER_SUFFIXES)
    if not found:
        patterns = ", ".join(f"*{s}" for s in RASTER_SUFFIXES)
        raise InputError(f"folder {os.fspath(folder)} matches no raster ({patterns}); give "
                         "raster files or a folder that holds some")
    return found


def expand_inputs(items: Sequence[str | os.PathLike], what: str = "input") -> list[str]:
    """Expand raster inputs: folders to their rasters, quoted globs to their matches.

    The one expansion of every command that takes rasters (``predict``'s
    inputs, ``train custom``'s images and labels). A glob (``'tiles/*.tif'``,
    ``'**/*.tif'`` recursive) is expanded here when the shell did not (it was
    quoted, or on Windows); a folder gives its rasters
    (:data:`RASTER_SUFFIXES`); GDAL paths (``/vsicurl/...``) and other paths
    are kept as they are, in order.

    Args:
        items: Paths, folders or glob patterns.
        what: What the items are, for messages (``input``, ``--images``).

    Raises:
        InputError: A folder holds no raster, or a glob matches nothing.

    """
    sources = []
    for item in map(os.fspath, items):
        if Path(item).is_dir():
            sources.extend(rasters_in(item))
        elif any(c in item for c in "*?[") and not item.startswith("/vsi") and \
                not Path(item).exists():
            found = sorted(p for p in glob.glob(item, recursive=True) if Path(p).is_file())
            if not found:
                raise InputError(f"{what} {item!r} matches no file; check the pattern or give "
                                 "the raster paths")
            sources.extend(found)
        else:
            sources.append(item)
    return sources


def data_bands(dataset: rasterio.DatasetReader) -> list[int]:
    """Return the 1-based indexes of the data bands (an alpha band is a mask)."""
    return [i for i, interp in zip(dataset.indexes, dataset.colorinterp, strict=True)
            if interp is not ColorInterp.alpha]


def select_bands(dataset: rasterio.DatasetReader, checkpoint_bands: Sequence[int],
                 bands: Sequence[int] | None = None, name: str = "input") -> list[int]:
    """Choose the bands to read, checked against the raster and the checkpoint.

    Without ``bands`` the checkpoint's band list applies and the raster must
    have exactly ``max(checkpoint_bands)`` data bands (alpha excluded), so an
    RGB checkpoint predicts an RGB or RGBA raster but refuses a 4-band one
    instead of silently ignoring a band.

    Args:
        dataset: The open raster.
        checkpoint_bands: The checkpoint's 1-based band indexes.
        bands: 1-based band indexes chosen by the user, overriding the
            checkpoint's (one per checkpoint band).
        name: How to name the raster in error messages.

    Returns:
        1-based band indexes to read, in order.

    Raises:
        InputError: The bands do not match the raster or the checkpoint.

    """
    available = data_bands(dataset)
    n = len(checkpoint_bands)
    if bands is None:
        expected = max(checkpoint_bands)
        if len(available) != expected:
            fix = (f"choose {n} of them with --bands, e.g. --bands "
                   f"{','.join(str(b) for b in available[:n])}" if len(available) >= n else
                   f"give a raster with {expected} bands or a checkpoint trained on "
                   f"{len(available)} band(s)")
            raise InputError(
                f"{name} has {len(available)} data band(s) but the checkpoint expects {expected} "
                f"(it reads bands {list(checkpoint_bands)}); {fix}")
        return [available[b - 1] for b in checkpoint_bands]
    bands = [int(b) for b in bands]
    if len(bands) != n:
        raise InputError(f"--bands {','.join(map(str, bands))} selects {len(bands)} band(s) but "
                         f"the checkpoint takes {n}; give {n} band indexes")
    bad = [b for b in bands if b not in available]
    if bad:
        raise InputError(f"--bands {','.join(map(str, bands))}: band(s) {bad} are not data bands "
                         f"of {name} (data bands: {available}); pick from those")
    return bands


@dataclass
class Normalization:
    """Pixel normalisation: ``x = (raw / scale - mean) / std`` per band."""

    scale: float = 255.0
    mean: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])
    std: list[float] = field(default_factory=lambda: [1.0, 1.0, 1.0])


def normalize(raw: np.ndarray, valid: np.ndarray, normalization: Normalization) -> np.ndarray:
    """Apply ``x = (raw / scale - mean) / std`` per band and zero masked pixels.

    Args:
        raw: (C, H, W) pixel values of any numeric type.
        valid: (H, W) boolean mask of valid pixels.
        normalization: The checkpoint's normalisation.

    Returns:
        (C, H, W) float32 array, 0 where ``valid`` is false.

    """
    mean = np.asarray(normalization.mean, dtype=np.float32)[:, None, None]
    std = np.asarray(normalization.std, dtype=np.float32)[:, None, None]
    x = (raw.astype(np.float32) / np.float32(normalization.scale) - mean) / std
    x[:, ~valid] = 0.0
    return x


def open_dataset(path: str | os.PathLike) -> rasterio.DatasetReader:
    """Open a raster with rasterio, turning failures into one-line errors.

    Local paths are checked first; GDAL paths (``/vsicurl/...``, VRTs,
    ``s3://``) go to rasterio as they are.

    Raises:
        InputError: The path does not exist or is not a raster GDAL can read.

    """
    text = os.fspath(path)
    if not text.startswith("/vsi") and "://" not in text and not Path(text).exists():
        raise InputError(f"input {text} does not exist; check the path")
    try:
        dataset = rasterio.open(text)
    except RasterioIOError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "unreadable"
        raise InputError(f"input {text} is not a raster GDAL can read ({first}); give a "
                         "GeoTIFF, a VRT or another GDAL raster") from None
    if any(np.dtype(d).kind == "c" for d in dataset.dtypes):
        dataset.close()
        raise InputError(f"input {text} has complex pixels ({dataset.dtypes[0]}); give a "
                         "real-valued raster (uint8, uint16, float32, ...)")
    return dataset


def gdal_reason(error: BaseException) -> str:
    """Return GDAL's reason for a failed read, in one line.

    rasterio raises ``RasterioIOError("Read failed. See previous exception
    ...")`` chained to GDAL's own errors (the block that failed, then the
    codec's or the file system's reason); their first lines are joined,
    outermost first, without repeats.
    """
    messages: list[str] = []
    current: BaseException | None = error
    while current is not None and len(messages) < 8:
        lines = str(current).strip().splitlines()
        text = lines[0].strip() if lines else ""
        if text and "See previous exception" not in text and \
                not any(text in known for known in messages):
            messages.append(text)
        current = current.__cause__ or current.__context__
    return "; ".join(messages) or type(error).__name__


def describe_window(dataset: rasterio.DatasetReader, window: Window | None) -> str:
    """Name a window of ``dataset`` in pixels and in the file's blocks (tiles or strips)."""
    if window is None:
        window = Window(0, 0, dataset.width, dataset.height)
    col, row = int(window.col_off), int(window.row_off)
    width, height = int(window.width), int(window.height)
    text = f"window x {col}-{col + width - 1}, y {row}-{row + height - 1}"
    block_rows, block_cols = dataset.block_shapes[0]
    if block_rows and block_cols:
        bx = f"{col // block_cols}-{(col + width - 1) // block_cols}"
        by = f"{row // block_rows}-{(row + height - 1) // block_rows}"
        text += f" (blocks x {bx}, y {by} of {block_cols}x{block_rows} px)"
    return text


def unreadable_raster(error: BaseException) -> RasterReadError | None:
    """Return the one-line error of a failed GDAL read raised outside :func:`reading`, or None.

    For reads made by other libraries (torchgeo's datasets): GDAL's reason
    usually names the file and the block.
    """
    if not isinstance(error, RasterioIOError) or not str(error).startswith("Read failed"):
        return None
    return RasterReadError(f'a raster cannot be read: GDAL says "{gdal_reason(error)}"; the '
                           "file is damaged or incomplete (an interrupted copy or download?) or "
                           "a VRT's source is missing; copy or make it again")


@contextmanager
def reading(dataset: rasterio.DatasetReader, window: Window | None = None,
            role: str = "input") -> Iterator[None]:
    """Turn a failed GDAL read of ``window`` into one :class:`RasterReadError` line.

    The line names the file, the window (and the blocks it covers) and
    GDAL's reason, with the fix: a VRT's missing or damaged source is
    restored or the VRT rebuilt; any other file is copied or made again.

    Raises:
        RasterReadError: The read failed (truncated file, corrupt tile,
            missing VRT source, unreachable remote file).

    """
    try:
        yield
    except (RasterioIOError, CPLE_BaseError) as exc:
        if dataset.driver == "VRT":
            fix = ("a source file of the VRT is missing or damaged; restore it or rebuild the "
                   "VRT (gdalbuildvrt)")
        else:
            fix = ("the file is damaged or incomplete (an interrupted copy or download?); copy "
                   "or make it again")
        raise RasterReadError(f"{role} {dataset.name} cannot be read at "
                              f"{describe_window(dataset, window)}: GDAL says "
                              f"\"{gdal_reason(exc)}\"; {fix}") from None


#: Inputs already warned about having no CRS (a run checks an input more than once).
_WARNED_NO_CRS: set[str] = set()


def check_georeferencing(dataset: rasterio.DatasetReader, polygons: bool = False) -> None:
    """Check, before any work, that the outputs can be placed where the input is.

    The outputs copy the input's CRS and geotransform. A raster located only
    by ground control points or RPCs has neither (its pixels are not yet on a
    map grid), so it is refused with the command that warps it; a raster
    without a CRS predicts, with one warning line, into outputs without one,
    but cannot be turned into polygons.

    Args:
        dataset: The open input.
        polygons: Whether polygons are to be written from its prediction.

    Raises:
        InputError: GCPs or RPCs instead of a geotransform; or no CRS while
            ``polygons`` is true.

    """
    name = dataset.name
    with warnings.catch_warnings():  # rasterio warns when it has no geotransform to give
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        has_transform = not dataset.transform.is_identity
        gcps, _ = dataset.gcps
        rpcs = dataset.rpcs
    if not has_transform and (gcps or rpcs):
        what, option = ((f"{len(gcps)} ground control points", "") if gcps
                        else ("rational polynomial coefficients (RPCs)", " -rpc"))
        raise InputError(f"input {name} is located by {what}, not by a geotransform, so the "
                         "outputs could not be placed where it is; warp it onto a map grid "
                         f"first: gdalwarp{option} {name} warped.tif (or, without a copy, "
                         f"gdalwarp{option} -of VRT {name} warped.vrt) and predict that")
    if dataset.crs is None:
        if polygons:
            raise InputError(f"input {name} has no CRS, so polygons made from it could not be "
                             "placed on the map (--polygons); assign one first (rio edit-info "
                             f"--crs EPSG:<code> {name}) or leave out --polygons")
        if name in _WARNED_NO_CRS:
            return
        _WARNED_NO_CRS.add(name)
        what = "has no CRS" if has_transform else "is not georeferenced (no CRS, no geotransform)"
        log.warning("input %s %s; the outputs will not be either (assign a CRS with rio "
                    "edit-info --crs EPSG:<code> %s)", name, what, name)


def _inside(window: Window, bounds: Window) -> Window | None:
    """Return the part of ``window`` inside ``bounds``, or None when they do not meet."""
    if not windows.intersect(window, bounds):
        return None
    return windows.intersection(window, bounds)


def _slices_within(part: Window, window: Window) -> tuple[slice, slice]:
    """Return the (row, column) slices of ``part`` in an array covering ``window``."""
    return Window(part.col_off - window.col_off, part.row_off - window.row_off,
                  part.width, part.height).toslices()


class RasterInput:
    """A raster opened for prediction: band selection, masks, normalisation.

    Args:
        dataset: An open rasterio dataset (closed by :meth:`close`).
        bands: 1-based indexes of the bands to read (see :func:`select_bands`).
        normalization: How raw values become network inputs.
        nodata: A value that marks invalid pixels where the file does not
            tag one (``--nodata``): a pixel is masked where every selected
            band holds it, on top of the file's own masks.

    """

    def __init__(self, dataset: rasterio.DatasetReader, bands: Sequence[int],
                 normalization: Normalization, nodata: float | None = None) -> None:
        self.dataset = dataset
        self.bands = list(bands)
        self.normalization = normalization
        self.nodata = None if nodata is None else float(nodata)

    @classmethod
    def open(cls, path: str | os.PathLike, checkpoint_bands: Sequence[int],
             normalization: Normalization, bands: Sequence[int] | None = None,
             nodata: float | None = None) -> RasterInput:
        """Open ``path`` and check its bands against a checkpoint's.

        Raises:
            InputError: Missing or unreadable file, or mismatching bands.

        """
        dataset = open_dataset(path)
        try:
            chosen = select_bands(dataset, checkpoint_bands, bands, name=os.fspath(path))
        except InputError:
            dataset.close()
            raise
        return cls(dataset, chosen, normalization, nodata)

    def __enter__(self) -> RasterInput:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the dataset."""
        self.dataset.close()

    @property
    def height(self) -> int:
        """Raster height in pixels."""
        return self.dataset.height

    @property
    def width(self) -> int:
        """Raster width in pixels."""
        return self.dataset.width

    @property
    def window(self) -> Window:
        """The whole raster as a window."""
        return Window(0, 0, self.width, self.height)

    @functools.cached_property
    def _unmasked(self) -> bool:
        """Whether the file tags no nodata, alpha band or mask."""
        return all(flags == [MaskFlags.all_valid] for flags in self.dataset.mask_flag_enums)

    @functools.cached_property
    def all_valid(self) -> bool:
        """Whether every pixel is valid: no nodata, alpha band or mask, and integer pixels."""
        return (self._unmasked and self.nodata is None
                and all(np.dtype(self.dataset.dtypes[b - 1]).kind in "iu" for b in self.bands))

    def _valid(self, raw: np.ndarray, window: Window,
               shape: tuple[int, int] | None = None) -> np.ndarray:
        """Return the validity of ``raw``, read from ``window`` (inside the raster) at ``shape``."""
        if self.all_valid or self._unmasked:  # spares reading GDAL's all-255 mask
            valid = np.ones(raw.shape[1:], dtype=bool)
        else:
            with reading(self.dataset, window):
                valid = self.dataset.dataset_mask(window=window, out_shape=shape) != 0
        if raw.dtype.kind == "f":
            valid &= np.isfinite(raw).all(axis=0)
        if self.nodata is not None and not np.isnan(self.nodata):
            valid &= ~(raw == self.nodata).all(axis=0)
        return valid

    def read_global(self, window: Window, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        """Read a window resampled to ``shape`` by a decimated read (``out_shape``).

        A window reaching outside the raster (a scene padded up to the patch
        size) is read boundless: the part inside the raster is read at its
        share of ``shape`` (rounded to whole pixels) and the rest is masked.

        Args:
            window: Raster pixels to read.
            shape: (height, width) of the returned view.

        Returns:
            (C, h, w) float32 normalised pixels and (h, w) boolean validity.

        """
        height, width = shape
        inside = _inside(window, self.window)
        if inside == window:
            with reading(self.dataset, window):
                raw = self.dataset.read(self.bands, window=window,
                                        out_shape=(len(self.bands), *shape),
                                        resampling=GLOBAL_RESAMPLING)
            valid = self._valid(raw, window, shape)
            return normalize(raw, valid, self.normalization), valid
        x = np.zeros((len(self.bands), height, width), dtype=np.float32)
        valid = np.zeros(shape, dtype=bool)
        if inside is not None:
            sy, sx = height / window.height, width / window.width
            r0 = round((inside.row_off - window.row_off) * sy)
            c0 = round((inside.col_off - window.col_off) * sx)
            h = max(1, min(height - r0, round(inside.height * sy)))
            w = max(1, min(width - c0, round(inside.width * sx)))
            x[:, r0:r0 + h, c0:c0 + w], valid[r0:r0 + h, c0:c0 + w] = self.read_global(inside,
                                                                                       (h, w))
        return x, valid

    def read_raw(self, window: Window) -> tuple[np.ndarray, np.ndarray]:
        """Read raw pixels of a window that may reach outside the raster.

        Pixels outside the raster are 0 and invalid. Only the part inside the
        raster is read (rasterio's own boundless read goes through a VRT that
        loses alpha-band masks).

        Returns:
            (C, h, w) raw pixels in the raster's dtype and (h, w) validity.

        """
        dtype = np.result_type(*(self.dataset.dtypes[b - 1] for b in self.bands))
        raw = np.zeros((len(self.bands), int(window.height), int(window.width)), dtype=dtype)
        valid = np.zeros(raw.shape[1:], dtype=bool)
        inside = _inside(window, self.window)
        if inside is not None:
            with reading(self.dataset, inside):
                part = self.dataset.read(self.bands, window=inside)
            at = _slices_within(inside, window)
            raw[(slice(None), *at)] = part
            valid[at] = self._valid(part, inside)
        return raw, valid

    def read(self, window: Window) -> tuple[np.ndarray, np.ndarray]:
        """Read normalised full-resolution pixels of a window, boundless and masked.

        Returns:
            (C, h, w) float32 normalised pixels (0 where invalid) and (h, w)
            validity (false outside the raster and where the input is masked).

        """
        raw, valid = self.read_raw(window)
        return normalize(raw, valid, self.normalization), valid

    def valid_mask(self, window: Window) -> np.ndarray:
        """Return the (h, w) validity of a window (false outside the raster)."""
        if not self.all_valid:
            return self.read_raw(window)[1]
        valid = np.zeros((int(window.height), int(window.width)), dtype=bool)
        inside = _inside(window, self.window)
        if inside is not None:  # no pixels to read: all of the raster is valid
            valid[_slices_within(inside, window)] = True
        return valid
