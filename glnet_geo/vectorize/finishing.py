"""Finishing complete regions into features: min-area, regularization, map coordinates.

Holes smaller than ``min_area`` are filled and regions smaller than it
dropped; buildings optionally get right-angled outlines
(:mod:`glnet_geo.vectorize.regularize`); geometries go from pixel to map
coordinates with the raster's transform, and each feature gets ``class_id``,
``class_name``, ``area_m2`` (:mod:`glnet_geo.vectorize.areas`) and, with a
probabilities raster, ``confidence``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from glnet_geo.vectorize.areas import PixelAreas, pixel_to_map
from glnet_geo.vectorize.blocks import Connectivity, geometry_array, valid_polygons

if TYPE_CHECKING:
    import geopandas as gpd
    from affine import Affine
    from rasterio.crs import CRS

    from glnet_geo.vectorize.seams import Regions

log = logging.getLogger(__name__)


@dataclass
class Finisher:
    """Turns complete pixel-space regions into output features."""

    transform: Affine
    crs: CRS
    areas: PixelAreas
    class_names: dict[int, str]
    min_area: float
    regularize: bool
    connectivity: Connectivity
    with_confidence: bool

    def columns(self) -> dict[str, str]:
        """Output attribute names and dtypes."""
        out = {"class_id": "int32", "class_name": "object", "area_m2": "float64"}
        if self.with_confidence:
            out["confidence"] = "float64"
        return out

    @property
    def geometry_type(self) -> str:
        """Polygon with 4-connectivity, MultiPolygon with 8."""
        return "Polygon" if self.connectivity is Connectivity.FOUR else "MultiPolygon"

    def __call__(self, regions: Regions) -> gpd.GeoDataFrame:
        """Finish a chunk of regions (consumed: its geometries are moved out)."""
        import geopandas as gpd
        import pandas as pd
        import shapely

        geoms = geometry_array(regions.geometries)
        regions.geometries.clear()
        class_ids = np.asarray(regions.class_ids, dtype=np.int64)
        pixels = np.asarray(regions.pixels, dtype=np.float64)
        conf = np.asarray(regions.confidence, dtype=np.float64)
        if self.min_area > 0:
            geoms = geometry_array([_fill_holes(g, self.min_area, self.areas) for g in geoms])
            keep = self.areas(geoms) >= self.min_area
            geoms, class_ids, pixels, conf = geoms[keep], class_ids[keep], pixels[keep], conf[keep]
        if self.regularize and len(geoms):
            from glnet_geo.vectorize.regularize import regularize_polygon

            geoms = valid_polygons(geometry_array([regularize_polygon(g) for g in geoms]))
        if self.connectivity is Connectivity.FOUR:
            geoms = geometry_array([_single(g) for g in geoms])
        keep = ~shapely.is_empty(geoms)
        geoms, class_ids, pixels, conf = geoms[keep], class_ids[keep], pixels[keep], conf[keep]
        area = self.areas(geoms) if len(geoms) else np.zeros(0)
        data = {
            "class_id": pd.Series(class_ids, dtype="int32"),
            "class_name": pd.Series([self.class_names.get(int(c), f"class_{c}")
                                     for c in class_ids], dtype="object"),
            "area_m2": pd.Series(area, dtype="float64"),
        }
        if self.with_confidence:
            data["confidence"] = pd.Series(conf / np.maximum(pixels, 1), dtype="float64")
        geoms = pixel_to_map(geoms, self.transform) if len(geoms) else geoms
        return gpd.GeoDataFrame(data, geometry=gpd.GeoSeries(geoms, crs=self.crs.to_wkt()))


def _fill_holes(geom: Any, min_area: float, areas: PixelAreas) -> Any:
    """``geom`` with the holes smaller than ``min_area`` m2 filled."""
    import shapely
    from shapely.geometry import MultiPolygon, Polygon

    if geom.geom_type == "MultiPolygon":
        return MultiPolygon([_fill_holes(p, min_area, areas) for p in geom.geoms])
    if geom.geom_type != "Polygon" or not geom.interiors:
        return geom
    rings = list(geom.interiors)
    keep = areas(shapely.polygons(rings)) >= min_area
    return Polygon(geom.exterior, [r for r, k in zip(rings, keep, strict=True) if k])


def _single(geom: Any) -> Any:
    """Return a Polygon for a 4-connected region (largest part if repairs split it)."""
    if geom.geom_type == "Polygon":
        return geom
    parts = sorted(getattr(geom, "geoms", []), key=lambda p: p.area, reverse=True)
    if not parts:
        return geom
    if len(parts) > 1:
        log.warning("a repaired region split into %d parts; kept the largest (%.1f of %.1f "
                    "px2)", len(parts), parts[0].area, geom.area)
    return parts[0]
