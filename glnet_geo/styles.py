"""Styles that GIS tools apply when they open our outputs.

- A QGIS layer style (``.qml``, QGIS's own XML) with the output's base name:
  QGIS applies ``classes.qml`` when it opens ``classes.tif`` (or
  ``polygons.qml`` beside ``polygons.geojson``). Class rasters get a paletted
  (unique values) renderer, polygons a renderer categorised on ``class_name``;
  both carry the checkpoint's colours and class names.
- In a GeoPackage, the same polygon style as a row of the ``layer_styles``
  table (the convention QGIS and GDAL share), marked ``useAsDefault``.
- Beside a class GeoTIFF, GDAL's persistent auxiliary metadata
  (``classes.tif.aux.xml``, GDAL's PAM format) with the band's category names
  and a thematic raster attribute table (value, class name, colour). GDAL
  keeps both there for GeoTIFFs (the TIFF format has no place for them), and
  reads them back on open, so ``gdalinfo``, QGIS and ArcGIS list the names.
"""

from __future__ import annotations

import os
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

#: QGIS version written in the styles (any QGIS 3 reads them).
QGIS_VERSION = "3.28.0-Firenze"
#: Name of the style rows glnet-geo writes in ``layer_styles``.
STYLE_NAME = "glnet-geo classes"
#: The polygon attribute the vector styles categorise on.
CLASS_FIELD = "class_name"

# GDAL raster attribute table field types and usages (gdal.h: GDALRATFieldType, ...Usage).
_GFT_INTEGER, _GFT_STRING = 0, 2
_GFU_GENERIC, _GFU_NAME, _GFU_MINMAX = 0, 2, 5
_GFU_RED, _GFU_GREEN, _GFU_BLUE = 6, 7, 8


@dataclass(frozen=True)
class ClassStyle:
    """How one class is drawn.

    Attributes:
        value: The class id (pixel value).
        name: The class name.
        color: Its RGB colour.

    """

    value: int
    name: str
    color: tuple[int, int, int]

    @property
    def hex(self) -> str:
        """The colour as ``#rrggbb``."""
        return "#{:02x}{:02x}{:02x}".format(*self.color)


def class_styles(names: Sequence[str], colors: Sequence[Sequence[int]]) -> list[ClassStyle]:
    """Pair class names and colours by class id."""
    return [ClassStyle(i, str(name), (int(c[0]), int(c[1]), int(c[2])))
            for i, (name, c) in enumerate(zip(names, colors, strict=True))]


def qml_path(path: str | os.PathLike) -> Path:
    """Return the ``.qml`` QGIS looks for beside ``path`` (same base name)."""
    return Path(path).with_suffix(".qml")


def aux_xml_path(path: str | os.PathLike) -> Path:
    """Return GDAL's auxiliary metadata file of ``path`` (``<name>.aux.xml``)."""
    path = Path(path)
    return path.with_name(path.name + ".aux.xml")


def _document(root: ET.Element) -> str:
    ET.indent(root)
    return ET.tostring(root, encoding="unicode") + "\n"


def _qgis(style_categories: str) -> ET.Element:
    return ET.Element("qgis", version=QGIS_VERSION, styleCategories=style_categories)


def raster_qml(styles: Sequence[ClassStyle], band: int = 1) -> str:
    """Return a QGIS style drawing ``band`` as a paletted (unique values) raster."""
    root = _qgis("AllStyleCategories")
    pipe = ET.SubElement(root, "pipe")
    renderer = ET.SubElement(pipe, "rasterrenderer", type="paletted", band=str(band),
                             opacity="1", alphaBand="-1", nodataColor="")
    ET.SubElement(renderer, "rasterTransparency")
    palette = ET.SubElement(renderer, "colorPalette")
    for style in styles:
        ET.SubElement(palette, "paletteEntry", value=str(style.value), color=style.hex,
                      alpha="255", label=style.name)
    ET.SubElement(pipe, "brightnesscontrast", brightness="0", contrast="0", gamma="1")
    ET.SubElement(pipe, "huesaturation", saturation="0", colorizeOn="0", grayscaleMode="0")
    ET.SubElement(pipe, "rasterresampler", maxOversampling="2")
    ET.SubElement(root, "blendMode").text = "0"
    return _document(root)


def _fill_symbol(parent: ET.Element, name: str, color: tuple[int, int, int]) -> None:
    symbol = ET.SubElement(parent, "symbol", type="fill", name=name, alpha="1",
                           clip_to_extent="1", force_rhr="0")
    layer = ET.SubElement(symbol, "layer", {"class": "SimpleFill", "enabled": "1",
                                            "locked": "0", "pass": "0"})
    props = {"color": "{},{},{},255".format(*color), "outline_color": "35,35,35,255",
             "outline_style": "solid", "outline_width": "0.26", "outline_width_unit": "MM",
             "style": "solid"}
    options = ET.SubElement(layer, "Option", type="Map")  # QGIS >= 3.26
    for key, value in props.items():
        ET.SubElement(options, "Option", name=key, type="QString", value=value)
    for key, value in props.items():  # earlier QGIS 3 releases
        ET.SubElement(layer, "prop", k=key, v=value)


def polygon_qml(styles: Sequence[ClassStyle], field: str = CLASS_FIELD) -> str:
    """Return a QGIS style filling polygons by their ``field`` (class name)."""
    root = _qgis("Symbology")
    renderer = ET.SubElement(root, "renderer-v2", type="categorizedSymbol", attr=field,
                             symbollevels="0", enableorderby="0", forceraster="0")
    categories = ET.SubElement(renderer, "categories")
    symbols = ET.SubElement(renderer, "symbols")
    for index, style in enumerate(styles):
        ET.SubElement(categories, "category", value=style.name, label=style.name,
                      symbol=str(index), render="true")
        _fill_symbol(symbols, str(index), style.color)
    return _document(root)


def pam_categories(styles: Sequence[ClassStyle], band: int = 1) -> str:
    """Return GDAL PAM metadata giving ``band`` category names and a thematic RAT.

    Category ``i`` is the name of pixel value ``i``; values without a class
    (up to the highest class id) get an empty name.
    """
    by_value = {style.value: style for style in styles}
    root = ET.Element("PAMDataset")
    band_element = ET.SubElement(root, "PAMRasterBand", band=str(band))
    categories = ET.SubElement(band_element, "CategoryNames")
    for value in range(max(by_value, default=-1) + 1):
        ET.SubElement(categories, "Category").text = \
            by_value[value].name if value in by_value else ""
    table = ET.SubElement(band_element, "GDALRasterAttributeTable", tableType="thematic")
    fields = (("value", _GFT_INTEGER, _GFU_MINMAX), ("class_name", _GFT_STRING, _GFU_NAME),
              ("red", _GFT_INTEGER, _GFU_RED), ("green", _GFT_INTEGER, _GFU_GREEN),
              ("blue", _GFT_INTEGER, _GFU_BLUE), ("color", _GFT_STRING, _GFU_GENERIC))
    for index, (name, kind, usage) in enumerate(fields):
        field = ET.SubElement(table, "FieldDefn", index=str(index))
        ET.SubElement(field, "Name").text = name
        ET.SubElement(field, "Type").text = str(kind)
        ET.SubElement(field, "Usage").text = str(usage)
    for row, style in enumerate(styles):
        element = ET.SubElement(table, "Row", index=str(row))
        for value in (style.value, style.name, *style.color, style.hex):
            ET.SubElement(element, "F").text = str(value)
    return _document(root)


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` through a hidden temporary file and one rename."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def add_layer_style(gpkg: str | os.PathLike, layer: str, qml: str,
                    name: str = STYLE_NAME) -> None:
    """Store ``qml`` as the default style of ``layer`` in a GeoPackage's ``layer_styles``.

    The table follows the layout QGIS creates (and GDAL's GPKG driver knows):
    QGIS applies the row whose ``f_table_name`` and ``f_geometry_column``
    match the layer and whose ``useAsDefault`` is true when the layer opens.
    """
    import pandas as pd
    import pyogrio

    geometry_column = pyogrio.read_info(gpkg, layer=layer)["geometry_name"] or "geom"
    row = pd.DataFrame({
        "f_table_catalog": [""], "f_table_schema": [""], "f_table_name": [layer],
        "f_geometry_column": [geometry_column], "styleName": [name], "styleQML": [qml],
        "styleSLD": [""], "useAsDefault": [True],
        "description": [f"{name}: categorised on {CLASS_FIELD}"], "owner": [""], "ui": [""],
        "update_time": [pd.Timestamp(datetime.now(UTC))],
    })
    exists = "layer_styles" in {name for name, _ in pyogrio.list_layers(gpkg)}
    pyogrio.write_dataframe(row, gpkg, layer="layer_styles", driver="GPKG", append=exists)
