"""Quick-look PNG of a prediction: the input with the classes overlaid and a legend.

Both rasters are read decimated to at most :data:`MAX_SIZE` pixels a side
(GDAL serves the reads from overviews where the files have them, and the
class COG always has them), so the preview costs little memory whatever the
raster size. Drawn with matplotlib's Agg backend (no display needed).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import rasterio
from rasterio.enums import Resampling

from glnet_geo.classes import NO_CLASS
from glnet_geo.io.reader import RasterInput, reading
from glnet_geo.io.staging import Staging
from glnet_geo.io.writer import writing

if TYPE_CHECKING:
    from matplotlib.figure import Figure

#: Longest side of the preview image in pixels.
MAX_SIZE = 1024
#: Opacity of the class colours over the image.
OVERLAY_ALPHA = 0.45


def preview_shape(height: int, width: int, max_size: int = MAX_SIZE) -> tuple[int, int]:
    """Return the (height, width) of a preview no larger than ``max_size`` a side."""
    scale = min(1.0, max_size / max(height, width))
    return max(1, round(height * scale)), max(1, round(width * scale))


def stretch(image: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Scale each band to 0..1 between its 2nd and 98th percentiles over valid pixels.

    Args:
        image: (C, H, W) raw values.
        valid: (H, W) validity.

    Returns:
        (H, W, C) float32 in [0, 1], 0 where invalid.

    """
    out = np.zeros((*image.shape[1:], image.shape[0]), dtype=np.float32)
    if not valid.any():
        return out
    for i, band in enumerate(image.astype(np.float32)):
        low, high = np.percentile(band[valid], (2, 98))
        out[..., i] = np.clip((band - low) / max(high - low, 1e-6), 0, 1)
    out[~valid] = 0
    return out


def background(raster: RasterInput, shape: tuple[int, int]) -> np.ndarray:
    """Read the input as an (H, W, 3) RGB image: its first three bands, or its first as grey."""
    bands = raster.bands[:3] if len(raster.bands) >= 3 else raster.bands[:1]
    with reading(raster.dataset):
        image = raster.dataset.read(bands, out_shape=(len(bands), *shape),
                                    resampling=Resampling.average)
        valid = raster.dataset.dataset_mask(out_shape=shape) != 0
    rgb = stretch(image, valid)
    return rgb if rgb.shape[-1] == 3 else np.repeat(rgb, 3, axis=-1)


def render(image: np.ndarray, classes: np.ndarray, class_names: Sequence[str],
           class_colors: Sequence[Sequence[int]], title: str = "") -> Figure:
    """Draw ``image`` with ``classes`` overlaid and a legend of the classes present.

    Args:
        image: (H, W, 3) float RGB in [0, 1].
        classes: (H, W) class ids, 255 for nodata.
        class_names: One name per class id.
        class_colors: One RGB triple (0..255) per class id.
        title: Figure title.

    Returns:
        The matplotlib figure (Agg canvas).

    """
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    colors = np.zeros((256, 4), dtype=np.float32)
    colors[:len(class_colors), :3] = np.asarray(class_colors, dtype=np.float32) / 255
    colors[:len(class_colors), 3] = OVERLAY_ALPHA
    colors[NO_CLASS] = 0
    overlay = colors[classes]
    height, width = classes.shape
    dpi = 100
    fig = Figure(figsize=(width / dpi + 2.2, max(height / dpi, 2.0) + 0.4), dpi=dpi)
    image_width = width / dpi / fig.get_figwidth()
    ax = fig.add_axes((0.01, 0.02, image_width, 0.92))
    ax.imshow(image, interpolation="nearest")
    ax.imshow(overlay, interpolation="nearest")
    ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=9)
    present = [int(c) for c in np.unique(classes) if c != NO_CLASS and c < len(class_names)]
    handles = [Patch(facecolor=np.asarray(class_colors[c]) / 255, edgecolor="black",
                     label=f"{c} {class_names[c]}") for c in present]
    if handles:
        fig.legend(handles=handles, loc="upper left", bbox_to_anchor=(0.02 + image_width, 0.94),
                   fontsize=8, frameon=False, title="classes", title_fontsize=9,
                   alignment="left")
    return fig


def write_preview(raster: RasterInput, classes: str | os.PathLike, output: str | os.PathLike,
                  class_names: Sequence[str], class_colors: Sequence[Sequence[int]],
                  max_size: int = MAX_SIZE) -> Path:
    """Write a quick-look PNG of ``raster`` with the class raster ``classes`` overlaid.

    The PNG is written under a hidden name and moved to ``output`` when complete.

    Args:
        raster: The input raster.
        classes: The class raster predicted from it (same grid).
        output: Path of the PNG.
        class_names: One name per class id.
        class_colors: One RGB triple per class id.
        max_size: Longest side of the image part in pixels.

    Returns:
        ``output`` as a path.

    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    output = Path(output)
    shape = preview_shape(raster.height, raster.width, max_size)
    with rasterio.open(classes) as src:
        class_ids = src.read(1, out_shape=shape, resampling=Resampling.nearest)
    fig = render(background(raster, shape), class_ids, class_names, class_colors,
                 title=Path(raster.dataset.name).name)
    with Staging(output) as staging, writing(output):
        partial = staging.path(".partial.png")
        FigureCanvasAgg(fig).print_png(partial)
        os.replace(partial, output)
    return output
