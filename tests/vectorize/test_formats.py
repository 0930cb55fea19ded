"""The format records: names, suffixes, what each writes."""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pytest
from mask_factory import PIXEL, UTM, blobs, count_regions, read, write_mask

from glnet_geo.errors import InputError
from glnet_geo.vectorize import VectorFormat, resolve_format, vectorize_raster


@pytest.mark.parametrize(("suffix", "fmt"), [
    (".gpkg", None), (".geojson", None), (".shp", None), (".fgb", None),
    (".parquet", None), (".data", "flatgeobuf"),
])
def test_output_formats_open_with_crs_and_attributes(tmp_path, suffix, fmt):
    data = blobs(24, 20, classes=2, cell=6, seed=6)
    mask = write_mask(tmp_path / "f.tif", data, band_tags={"class_names": '["bare", "crop"]'})
    out = vectorize_raster(mask, tmp_path / f"polygons{suffix}", format=fmt, block_size=8)
    if suffix == ".parquet":  # GDAL without its (optional) Parquet driver: read with pyarrow
        frame = gpd.read_parquet(out)
    else:
        frame = read(out)
    expected_crs = "EPSG:4326" if suffix == ".geojson" else UTM
    assert frame.crs == expected_crs
    assert {"class_id", "class_name", "area_m2"} <= set(frame.columns)
    assert len(frame) == count_regions(data, np.ones_like(data, bool), 4)
    assert set(frame.class_name) == {"bare", "crop"}
    assert frame.is_valid.all()
    assert frame.area_m2.sum() == pytest.approx(data.size * PIXEL * PIXEL)
    if suffix == ".geojson":
        doc = json.loads(out.read_text())
        assert "crs" not in doc  # RFC 7946: WGS 84 longitude/latitude, no crs member
        lon, lat = doc["features"][0]["geometry"]["coordinates"][0][0]
        assert 14 < lon < 16 and 36 < lat < 37
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_format_resolution():
    assert resolve_format("a.GPKG") is VectorFormat.GPKG
    assert resolve_format("a") is VectorFormat.GPKG
    assert resolve_format("a.json") is VectorFormat.GEOJSON
    assert resolve_format("a.x", "shp") is VectorFormat.SHAPEFILE
    with pytest.raises(InputError, match="xyz"):
        resolve_format("a.gpkg", "xyz")
    with pytest.raises(InputError, match=r"\.kml"):
        resolve_format("a.kml")
