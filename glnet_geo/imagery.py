"""What the training imagery looked like, and whether an input to predict looks like it.

A network only predicts well on pixels like those it was trained on. The
checkpoint records an :class:`ImageryProfile` of its training imagery: the
pixel dtype, each band's 2nd and 98th percentile and the pixel size in metres.
:func:`input_mismatch` compares a raster with it and says in one line what
differs and how to fix it: a uint16 raster for an 8-bit model, values on
another scale, a pixel size more than 1.5x off.
"""

from __future__ import annotations

import logging
import math
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import rasterio
from rasterio.errors import NotGeoreferencedWarning

from glnet_geo.io.reader import data_bands

if TYPE_CHECKING:
    from glnet_geo.io.reader import RasterInput

log = logging.getLogger(__name__)

#: Percentiles that bound a band's values in a profile.
PERCENTILES = (2.0, 98.0)
#: A pixel size this many times larger or smaller than the training's is flagged.
PIXEL_SIZE_TOLERANCE = 1.5
#: Metres per degree of latitude (and of longitude at the equator), for geographic CRSs.
METRES_PER_DEGREE = 111_320.0


@dataclass(frozen=True)
class ImageryProfile:
    """The pixels a network was trained on.

    Attributes:
        dtype: Pixel data type (``uint8``, ``uint16``, ``float32``, ...).
        low: Per band, the 2nd percentile of the values, or None if unknown.
        high: Per band, the 98th percentile, or None if unknown.
        pixel_size: Ground sampling distance in metres, or None if unknown.

    """

    dtype: str
    low: list[float] | None = None
    high: list[float] | None = None
    pixel_size: float | None = None


#: DeepGlobe Land Cover: 8-bit RGB at 50 cm (the official checkpoints' imagery).
DEEPGLOBE_IMAGERY = ImageryProfile(dtype="uint8", pixel_size=0.5)
#: Inria Aerial Image Labeling: 8-bit RGB at 30 cm.
INRIA_IMAGERY = ImageryProfile(dtype="uint8", pixel_size=0.3)


def pixel_size_m(dataset: rasterio.DatasetReader) -> float | None:
    """Return a raster's pixel size in metres (the mean of its sides), or None without a CRS.

    Projected CRSs use their linear unit; geographic ones the length of a
    degree at the raster's centre latitude.
    """
    crs = dataset.crs
    if crs is None or dataset.transform.is_identity:
        return None
    xres, yres = (abs(v) for v in dataset.res)
    if crs.is_geographic:
        lat = (dataset.bounds.top + dataset.bounds.bottom) / 2
        xres *= METRES_PER_DEGREE * math.cos(math.radians(lat))
        yres *= METRES_PER_DEGREE
    else:
        factor = crs.linear_units_factor[1]
        xres, yres = xres * factor, yres * factor
    return float(math.sqrt(xres * yres))


def _sample(dataset: rasterio.DatasetReader, bands: Sequence[int], sample_side: int,
            nodata: float | None = None) -> np.ndarray:
    """Return the valid pixels of a decimated read, ``(C, n)`` float64."""
    scale = max(1, max(dataset.height, dataset.width) // sample_side)
    shape = (len(bands), max(1, dataset.height // scale), max(1, dataset.width // scale))
    data = dataset.read(list(bands), out_shape=shape, masked=True)
    values = data.astype(np.float64).filled(np.nan)
    valid = np.isfinite(values).all(0)
    if nodata is not None:
        valid &= ~(values == nodata).all(0)
    return values[:, valid]


def profile_rasters(paths: Sequence[str | os.PathLike], pixel_size: float | None = None,
                    sample_side: int = 256, max_images: int = 32) -> ImageryProfile:
    """Profile training imagery from decimated reads (GDAL serves them from overviews).

    Args:
        paths: The training images (every data band is profiled); at most
            ``max_images`` of them, evenly spaced, are read.
        pixel_size: The pixel size in metres, if known (DeepGlobe 0.5);
            default: from the first georeferenced image's transform.
        sample_side: Each image is read at most this many pixels wide.
        max_images: How many images to read at most.

    """
    paths = list(paths)
    if len(paths) > max_images:
        paths = [paths[round(i * (len(paths) - 1) / (max_images - 1))] for i in range(max_images)]
    samples, dtype = [], None
    with warnings.catch_warnings():  # e.g. DeepGlobe's JPEGs carry no georeferencing
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        for path in paths:
            with rasterio.open(path) as src:
                dtype = dtype or src.dtypes[0]
                if pixel_size is None:
                    pixel_size = pixel_size_m(src)
                samples.append(_sample(src, data_bands(src), sample_side))
    values = np.concatenate(samples, axis=1) if samples else np.empty((0, 0))
    if values.size == 0:
        return ImageryProfile(dtype=dtype or "uint8", pixel_size=pixel_size)
    low, high = np.percentile(values, PERCENTILES, axis=1)
    return ImageryProfile(dtype=dtype, low=[float(v) for v in low],
                          high=[float(v) for v in high], pixel_size=pixel_size)


def input_mismatch(profile: ImageryProfile, dataset: rasterio.DatasetReader,
                   bands: Sequence[int], name: str, nodata: float | None = None,
                   sample_side: int = 256) -> str | None:
    """Say in one line how an input differs from the training imagery, or None if it does not.

    Flagged: another dtype (a uint16 raster for an 8-bit model); a band
    whose 2nd or 98th percentile lies more than one training range away from
    the training's; a pixel size more than :data:`PIXEL_SIZE_TOLERANCE` times
    off. Each comes with its fix (``gdal_translate -scale``, resampling
    through a VRT with ``gdalwarp``).

    Args:
        profile: The checkpoint's training imagery.
        dataset: The open input.
        bands: The 1-based bands predict reads, in the checkpoint's order.
        name: The input's name for the message.
        nodata: A nodata value given on the command line (``--nodata``).
        sample_side: The input is read at most this many pixels wide.

    """
    problems = []
    dtypes = sorted({dataset.dtypes[b - 1] for b in bands})
    scaled = False
    if dtypes != [profile.dtype]:
        scaled = True
        problems.append(f"is {'/'.join(dtypes)} but the model was trained on {profile.dtype} "
                        f"imagery (convert it, e.g. gdal_translate -ot "
                        f"{_gdal_type(profile.dtype)} -scale)")
    if profile.low is not None and profile.high is not None and len(profile.low) == len(bands):
        values = _sample(dataset, bands, sample_side, nodata)
        if values.size:
            low, high = np.percentile(values, PERCENTILES, axis=1)
            for i, (lo, hi, t_lo, t_hi) in enumerate(zip(low, high, profile.low, profile.high,
                                                         strict=True)):
                span = max(t_hi - t_lo, 1e-6)
                if abs(lo - t_lo) > span or abs(hi - t_hi) > span:
                    fix = "" if scaled else (
                        f" (rescale it: gdal_translate -scale {lo:g} {hi:g} {t_lo:g} {t_hi:g})")
                    problems.append(f"band {bands[i]} spans {lo:g}..{hi:g} (2-98%), the "
                                    f"training imagery {t_lo:g}..{t_hi:g}{fix}")
                    break
    size = pixel_size_m(dataset)
    if profile.pixel_size is not None and size is not None:
        ratio = size / profile.pixel_size
        if ratio > PIXEL_SIZE_TOLERANCE or ratio < 1 / PIXEL_SIZE_TOLERANCE:
            target = profile.pixel_size
            crs_note = "" if not dataset.crs.is_geographic else " in a projected CRS (-t_srs)"
            problems.append(f"has {size:.3g} m pixels, the model was trained at {target:g} m "
                            f"(resample through a VRT{crs_note}: gdalwarp -tr {target:g} "
                            f"{target:g} -r bilinear -of VRT {name} resampled.vrt)")
    if not problems:
        return None
    return f"{name} " + "; it ".join(problems) + "; predictions may be wrong"


def warn_if_unlike_training(profile: ImageryProfile | None, raster: RasterInput,
                            name: str) -> str | None:
    """Log :func:`input_mismatch`'s line as one warning; return it (None: nothing to say)."""
    if profile is None:
        return None
    message = input_mismatch(profile, raster.dataset, raster.bands, name, raster.nodata)
    if message is not None:
        log.warning(message)
    return message


def _gdal_type(dtype: str) -> str:
    """GDAL's name of a numpy dtype (for ``gdal_translate -ot``)."""
    return {"uint8": "Byte", "uint16": "UInt16", "int16": "Int16", "uint32": "UInt32",
            "int32": "Int32", "float32": "Float32", "float64": "Float64"}.get(dtype, dtype)
