"""area_m2 in square metres, whatever the CRS."""

from __future__ import annotations

import numpy as np
import pyproj
import pytest
import rasterio
import rasterio.features
from mask_factory import blobs, count_regions, read, write_mask
from rasterio.transform import from_origin

from glnet_geo.vectorize import AreaMethod, area_method, vectorize_raster


def test_geographic_areas_are_ellipsoidal(tmp_path):
    data = blobs(40, 50, classes=3, cell=9, seed=3)
    res = 0.001  # degrees, about 111 m x 80 m at 44 N
    transform = from_origin(10.0, 44.5, res, res)
    mask = write_mask(tmp_path / "wgs84.tif", data, crs="EPSG:4326", transform=transform)
    frame = read(vectorize_raster(mask, tmp_path / "wgs84.gpkg", block_size=16))
    assert frame.crs == "EPSG:4326"
    geod = pyproj.Geod(ellps="WGS84")
    row_area = []
    for row in range(data.shape[0]):
        top, bottom = 44.5 - row * res, 44.5 - (row + 1) * res
        area, _ = geod.polygon_area_perimeter([10, 10 + res, 10 + res, 10],
                                              [bottom, bottom, top, top])
        row_area.append(abs(area))
    row_area = np.array(row_area)
    assert len(frame) == count_regions(data, np.ones_like(data, bool), 4)
    for value in range(3):
        expected = ((data == value).sum(axis=1) * row_area).sum()
        assert frame.area_m2[frame.class_id == value].sum() == pytest.approx(expected, rel=5e-3)


def test_mercator_areas_are_not_planar(tmp_path):
    data = np.ones((20, 20), np.uint8)
    transform = from_origin(1_113_195.0, 6_446_276.0, 10.0, 10.0)  # about 10 E, 50 N
    mask = write_mask(tmp_path / "merc.tif", data, crs="EPSG:3857", transform=transform)
    frame = read(vectorize_raster(mask, tmp_path / "merc.gpkg"))
    to_lonlat = pyproj.Transformer.from_crs(3857, 4326, always_xy=True)
    lon, lat = to_lonlat.transform([1_113_195.0, 1_113_395.0, 1_113_395.0, 1_113_195.0],
                                   [6_446_076.0, 6_446_076.0, 6_446_276.0, 6_446_276.0])
    truth, _ = pyproj.Geod(ellps="WGS84").polygon_area_perimeter(lon, lat)
    assert area_method(rasterio.crs.CRS.from_epsg(3857)) is AreaMethod.EQUAL_AREA
    assert frame.area_m2.iloc[0] == pytest.approx(abs(truth), rel=5e-3)
    assert frame.area_m2.iloc[0] < 0.5 * 200 * 200  # the planar area is 2.4x too large here


def test_feet_are_converted_to_square_metres(tmp_path):
    data = np.ones((10, 12), np.uint8)
    transform = from_origin(980_000.0, 200_000.0, 3.0, 3.0)  # US survey feet
    mask = write_mask(tmp_path / "ft.tif", data, crs="EPSG:2263", transform=transform)
    frame = read(vectorize_raster(mask, tmp_path / "ft.gpkg"))
    foot = 1200 / 3937
    assert frame.area_m2.iloc[0] == pytest.approx(120 * 9 * foot * foot, rel=1e-9)
