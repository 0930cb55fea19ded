"""A STAC Item describing one prediction (``predict --stac item.json``).

The Item (built with :mod:`pystac`) locates the prediction on the map and
lists what it wrote:

- ``geometry`` and ``bbox``: the class raster's footprint in EPSG:4326
  (edges densified, so that a UTM footprint stays exact enough);
- the projection extension: the raster's own CRS (``proj:code`` or
  ``proj:wkt2``), ``proj:shape``, ``proj:transform`` and ``proj:bbox``;
- assets: ``classes`` (the class COG, with the classification extension's
  ``classification:classes``: value, name, title, colour, and the nodata
  value), ``probabilities``, ``polygons`` and ``preview`` when written, and
  the QGIS style of the class raster;
- provenance: ``glnet:*`` properties (the checkpoint's file, backbone, stage,
  network mode, version and the precision the network ran in) and the
  software in ``glnet:software``.

Asset links are relative to the Item, so the folder can be moved or uploaded
as a whole.
"""

from __future__ import annotations

import json
import os
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from glnet_geo.classes import NO_CLASS

if TYPE_CHECKING:
    import pystac

    from glnet_geo.checkpoint import Checkpoint, ModelConfig
    from glnet_geo.predict.outputs import PredictedRaster

#: Media types of the outputs, by file extension.
MEDIA_TYPES = {
    ".tif": "image/tiff; application=geotiff; profile=cloud-optimized",
    ".png": "image/png",
    ".gpkg": "application/geopackage+sqlite3",
    ".geojson": "application/geo+json",
    ".json": "application/geo+json",
    ".fgb": "application/vnd.flatgeobuf",
    ".parquet": "application/vnd.apache.parquet",
    ".shp": "application/vnd.shp",
    ".qml": "application/xml",
}
#: The precision the network runs in when the class raster does not record one.
DEFAULT_PRECISION = "fp32"


def _machine_name(name: str) -> str:
    """Return ``name`` in the classification extension's ``[A-Za-z0-9_-]+`` alphabet."""
    return re.sub(r"[^A-Za-z0-9_-]+", "_", name).strip("_") or "class"


def _footprint(src: Any, points_per_edge: int = 21) -> dict[str, Any]:
    """Return the raster's footprint as a GeoJSON polygon in EPSG:4326.

    Each edge is densified to ``points_per_edge`` points before reprojection,
    since straight edges in the raster's CRS are curves in longitude/latitude.
    """
    import numpy as np
    from rasterio.warp import transform_geom

    west, south, east, north = src.bounds
    t = np.linspace(0.0, 1.0, points_per_edge)[:-1]
    xs = np.concatenate([west + (east - west) * t, np.full_like(t, east),
                         east - (east - west) * t, np.full_like(t, west)])
    ys = np.concatenate([np.full_like(t, south), south + (north - south) * t,
                         np.full_like(t, north), north - (north - south) * t])
    ring = [*zip(xs.tolist(), ys.tolist(), strict=True), (west, south)]
    polygon = {"type": "Polygon", "coordinates": [ring]}
    return transform_geom(src.crs, "EPSG:4326", polygon, antimeridian_cutting=True,
                          precision=7)


def _acquired(tags: dict[str, str]) -> datetime | None:
    """Return the input's acquisition time from its TIFF datetime tag, if it has one."""
    text = tags.get("TIFFTAG_DATETIME")
    if not text:
        return None
    try:
        return datetime.strptime(text, "%Y:%m:%d %H:%M:%S").replace(tzinfo=UTC)
    except ValueError:
        return None


def _asset(path: Path, title: str, roles: list[str]) -> pystac.Asset:
    import pystac

    return pystac.Asset(href=os.fspath(path.resolve()), title=title, roles=roles,
                        media_type=MEDIA_TYPES.get(path.suffix.lower()))


def stac_item(result: PredictedRaster, config: ModelConfig, item_path: str | os.PathLike,
              checkpoint_name: str | None = None) -> pystac.Item:
    """Build the STAC Item of a prediction.

    Args:
        result: What :func:`~glnet_geo.predict.predict_raster` wrote.
        config: The checkpoint's configuration (classes, provenance).
        item_path: Where the Item will be written (asset links are relative
            to it).
        checkpoint_name: The checkpoint's file name, if it came from a file.

    Returns:
        The Item, its asset links relative to ``item_path``.

    """
    import pystac
    import rasterio
    from pystac.extensions.classification import Classification, ClassificationExtension
    from pystac.extensions.projection import ProjectionExtension
    from pystac.extensions.raster import RasterBand, RasterExtension

    from glnet_geo.styles import qml_path

    with rasterio.open(result.classes) as src:
        geometry = _footprint(src)
        tags = src.tags()
        crs, shape, transform, bounds = src.crs, [src.height, src.width], src.transform, \
            src.bounds
    with rasterio.open(result.input) as source:
        acquired = _acquired(source.tags())
    import shapely.geometry

    bbox = list(shapely.geometry.shape(geometry).bounds)
    now = datetime.now(UTC)
    item = pystac.Item(
        id=Path(result.classes).stem, geometry=geometry, bbox=bbox,
        datetime=acquired or now,
        properties={
            "title": f"GLNet classes of {Path(result.input).name}",
            "created": now.isoformat().replace("+00:00", "Z"),
            "glnet:software": tags.get("software"),
            "glnet:checkpoint": checkpoint_name,
            "glnet:backbone": config.backbone,
            "glnet:stage": config.stage.value,
            "glnet:checkpoint_version": config.version,
            "glnet:predict_mode": tags.get("predict_mode"),
            "glnet:network_mode": tags.get("network_mode"),
            "glnet:precision": tags.get("precision", DEFAULT_PRECISION),
            "glnet:scene_size": int(tags["scene_size"]) if "scene_size" in tags else None,
            "glnet:source": Path(result.input).name,
        })
    item.properties = {k: v for k, v in item.properties.items() if v is not None}
    projection = ProjectionExtension.ext(item, add_if_missing=True)
    epsg = crs.to_epsg()
    projection.apply(code=f"EPSG:{epsg}" if epsg else None,
                     wkt2=None if epsg else crs.to_wkt(version="WKT2_2019"),
                     shape=shape, transform=list(transform)[:6], bbox=list(bounds))

    classes = _asset(Path(result.classes), "Classes", ["data"])
    item.add_asset("classes", classes)
    ClassificationExtension.ext(classes, add_if_missing=True).apply(classes=[
        *(Classification.create(value=i, name=_machine_name(name), title=name,
                                color_hint="{:02X}{:02X}{:02X}".format(*color))
          for i, (name, color) in enumerate(zip(config.class_names, config.class_colors,
                                                strict=True))),
        Classification.create(value=NO_CLASS, name="nodata", title="no data",
                              nodata=True)])
    RasterExtension.ext(classes, add_if_missing=True).apply(
        [RasterBand.create(nodata=NO_CLASS, data_type="uint8")])
    if result.probabilities is not None:
        probabilities = _asset(Path(result.probabilities), "Class probabilities", ["data"])
        item.add_asset("probabilities", probabilities)
        RasterExtension.ext(probabilities, add_if_missing=True).apply(
            [RasterBand.create(data_type="uint8", scale=1 / 255, offset=0.0)
             for _ in config.class_names])
    if result.polygons is not None:
        item.add_asset("polygons", _asset(Path(result.polygons), "Class polygons", ["data"]))
    if result.preview is not None:
        item.add_asset("preview", _asset(Path(result.preview), "Preview", ["overview"]))
    style = qml_path(result.classes)
    if style.exists():
        item.add_asset("classes_style", _asset(style, "QGIS style of the classes",
                                               ["metadata"]))
    item.set_self_href(os.fspath(Path(item_path).resolve()))
    item.make_asset_hrefs_relative()
    return item


def write_stac_item(path: str | os.PathLike, result: PredictedRaster, config: ModelConfig,
                    checkpoint_name: str | None = None) -> Path:
    """Write the STAC Item of a prediction to ``path`` (JSON, written whole, then renamed).

    See :func:`stac_item`. The Item has no self link, so that it stays valid
    wherever the folder goes.
    """
    from glnet_geo.styles import write_text

    item = stac_item(result, config, path, checkpoint_name)
    document = item.to_dict(include_self_link=False, transform_hrefs=True)
    return write_text(path, json.dumps(document, indent=2) + "\n")


def write_prediction_item(path: str | os.PathLike, result: PredictedRaster,
                          checkpoint: Checkpoint | str | os.PathLike) -> Path:
    """Write the STAC Item of ``result``, predicted with ``checkpoint`` (a path or loaded)."""
    from glnet_geo.checkpoint import Checkpoint, ModelConfig, read_checkpoint

    if isinstance(checkpoint, Checkpoint):
        name = checkpoint.path.name if checkpoint.path is not None else None
        return write_stac_item(path, result, checkpoint.config, name)
    config = ModelConfig.from_dict(read_checkpoint(checkpoint)["config"])
    return write_stac_item(path, result, config, Path(checkpoint).name)
