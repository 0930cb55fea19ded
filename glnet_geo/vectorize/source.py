"""The rasters read: the class raster's checks, class names and palette; the probabilities.

A class raster is a georeferenced, single-band integer raster (glnet-geo's
masks or any other tool's). Its class names are the JSON ``class_names`` tag
that ``predict`` writes (:data:`glnet_geo.io.writer.CLASS_NAMES_TAG`), its
colours those of its palette.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from glnet_geo.errors import InputError
from glnet_geo.io.writer import CLASS_NAMES_TAG

if TYPE_CHECKING:
    import rasterio

    from glnet_geo.styles import ClassStyle

log = logging.getLogger(__name__)

#: Integer raster types polygonized (others: convert with ``gdal_translate -ot Int32``).
SUPPORTED_DTYPES = ("uint8", "int8", "uint16", "int16", "int32")


def check_class_raster(src: rasterio.io.DatasetReader) -> None:
    """Refuse a raster that is not a georeferenced, single-band integer class raster.

    Raises:
        InputError: several bands, a non-integer type, or no CRS.

    """
    name = Path(src.name).name
    if src.count != 1:
        raise InputError(f"{name} has {src.count} bands; expected a single-band class raster "
                         f"(pick one with: gdal_translate -b 1 {name} classes.tif)")
    if src.dtypes[0] not in SUPPORTED_DTYPES:
        raise InputError(f"{name} is {src.dtypes[0]}; expected integer classes "
                         f"({', '.join(SUPPORTED_DTYPES)}); convert with: "
                         f"gdal_translate -ot Int32 {name} classes.tif")
    if src.crs is None:
        raise InputError(f"{name} has no CRS, so its polygons cannot be placed on the map; "
                         f"assign one (rio edit-info --crs EPSG:<code> {name}) and rerun")


def read_class_names(src: rasterio.io.DatasetReader) -> dict[int, str]:
    """Class names stored in a raster: the ``class_names`` tag of band 1, else of the dataset.

    The tag is a JSON list (names by class id) or object (``{"id": "name"}``).
    Returns an empty dict when neither tag holds one.
    """
    for tags in (src.tags(1), src.tags()):
        text = tags.get(CLASS_NAMES_TAG)
        if not text:
            continue
        try:
            value = json.loads(text)
            if isinstance(value, list):
                return {i: str(n) for i, n in enumerate(value)}
            if isinstance(value, dict):
                return {int(k): str(n) for k, n in value.items()}
        except (ValueError, TypeError):
            pass
        log.warning("%s: tag %s=%r is not a JSON list of names; ignored",
                    src.name, CLASS_NAMES_TAG, text[:80])
    return {}


def class_styles(src: rasterio.io.DatasetReader, names: dict[int, str],
                 keep: Sequence[int] | None) -> list[ClassStyle]:
    """Return the named classes (those kept) with the raster's palette colours.

    Classes missing from the palette (or a raster without one) take colours
    of matplotlib's ``tab20``.
    """
    from matplotlib import colormaps

    from glnet_geo.styles import ClassStyle

    try:
        table = src.colormap(1)
    except ValueError:  # no colour table
        table = {}
    fallback = colormaps["tab20"]
    styles = []
    for value in sorted(names):
        if keep is not None and value not in keep:
            continue
        color = table.get(value)
        if color is None or (len(color) > 3 and color[3] == 0):
            color = tuple(round(255 * c) for c in fallback(value % 20)[:3])
        styles.append(ClassStyle(value, names[value], tuple(int(c) for c in color[:3])))
    return styles


def open_probabilities(path: str | os.PathLike,
                       src: rasterio.io.DatasetReader) -> rasterio.io.DatasetReader:
    """Open the probabilities raster written with the class raster ``src`` (same size).

    Raises:
        InputError: it cannot be opened or its size differs.

    """
    import rasterio

    try:
        prob = rasterio.open(path)
    except rasterio.errors.RasterioIOError as exc:
        raise InputError(f"probabilities {path} cannot be opened ({exc}); check the path"
                         ) from None
    if (prob.width, prob.height) != (src.width, src.height):
        prob.close()
        raise InputError(f"probabilities {path} are {prob.width}x{prob.height} px but the class "
                         f"raster is {src.width}x{src.height}; give the raster written with it")
    return prob
