"""The format records: names, suffixes, what each writes."""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pyogrio
import pytest
import rasterio
from mask_factory import PIXEL, UTM, blobs, count_regions, palette_mask, read, write_mask

from glnet_geo.errors import InputError, OutputError, OutputExistsError
from glnet_geo.vectorize import (
    FormatRecord,
    StyleHome,
    VectorFormat,
    check_output,
    output_files,
    resolve_format,
    vectorize_raster,
)
from glnet_geo.vectorize.formats import describe


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


#: The files each format writes for ``out/polygons<suffix>``, its QGIS style included: a new
#: format's record needs its line here (``test_every_format_has_a_round_trip_case``).
FILES = {
    VectorFormat.GPKG: ["polygons.gpkg"],
    VectorFormat.GEOJSON: ["polygons.geojson", "polygons.qml"],
    VectorFormat.SHAPEFILE: ["polygons.cpg", "polygons.dbf", "polygons.prj", "polygons.qml",
                             "polygons.shp", "polygons.shx"],
    VectorFormat.FLATGEOBUF: ["polygons.fgb", "polygons.qml"],
    VectorFormat.GEOPARQUET: ["polygons.parquet", "polygons.qml"],
}


def open_polygons(path, fmt: VectorFormat) -> gpd.GeoDataFrame:
    """Read an output with pyogrio (pyarrow for GeoParquet where GDAL lacks that driver)."""
    if fmt.driver is None and "Parquet" not in pyogrio.list_drivers():
        return gpd.read_parquet(path)
    return pyogrio.read_dataframe(path, layer=path.stem)


def test_every_format_has_a_round_trip_case():
    assert set(FILES) == set(VectorFormat)


@pytest.mark.parametrize("fmt", list(VectorFormat), ids=lambda f: f.value)
def test_every_format_record_round_trips(tmp_path, fmt):
    record = fmt.record
    mask = palette_mask(tmp_path / "classes.tif")
    with rasterio.open(mask) as src:
        data = src.read(1)
    (tmp_path / "out").mkdir()
    out = vectorize_raster(mask, tmp_path / "out" / f"polygons{record.suffix}", block_size=8)
    frame = open_polygons(out, fmt)
    assert len(frame) == count_regions(data, np.ones_like(data, bool), 4)
    assert frame.crs == (record.crs or UTM)
    assert set(frame.class_name) == {"bare", "crop", "water"}
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == FILES[fmt]
    assert [f.name for f in output_files(out, fmt)][:1] == [out.name]
    layers = [] if fmt.driver is None else [n for n, _ in pyogrio.list_layers(out)]
    assert ("layer_styles" in layers) == (record.styles is StyleHome.LAYER_STYLES)
    # Every name and suffix of the record selects it.
    for name in (record.name, *record.aliases):
        assert VectorFormat.parse(f" {name.upper()} ") is fmt
    for suffix in record.suffixes:
        assert resolve_format(f"a{suffix.upper()}") is fmt


def test_describe_lists_every_record():
    names, suffixes = describe(), describe(names=False)
    for fmt in VectorFormat:
        assert fmt.value in names and all(s in names for s in fmt.record.suffixes)
        assert fmt.suffix in suffixes.split(", ")
    assert "geojson (.geojson, .json; EPSG:4326)" in names


def test_a_record_is_checked():
    with pytest.raises(ValueError, match="lower case"):
        FormatRecord(name="x", title="X", driver="X", suffixes=(".X",))
    with pytest.raises(ValueError, match="OGR driver"):
        FormatRecord(name="x", title="X", driver=None, suffixes=(".x",))
    with pytest.raises(ValueError, match="layer_styles"):
        FormatRecord(name="x", title="X", driver="FlatGeobuf", suffixes=(".x",),
                     styles=StyleHome.LAYER_STYLES)


def test_check_output_refuses_any_part_of_a_shapefile(tmp_path):
    out = tmp_path / "roads.shp"
    check_output(out, VectorFormat.SHAPEFILE)
    (tmp_path / "roads.dbf").write_text("an earlier table")
    with pytest.raises(OutputExistsError, match=r"roads\.dbf already exists"):
        check_output(out, resolve_format(out))
    check_output(out, "shapefile", overwrite=True)
    check_output(tmp_path / "roads.gpkg", VectorFormat.GPKG)  # other formats: one file
    with pytest.raises(OutputError, match=r"give a file name such as .*polygons\.shp"):
        check_output(tmp_path, VectorFormat.SHAPEFILE)
    with pytest.raises(OutputError, match="does not exist"):
        check_output(tmp_path / "nowhere" / "roads.shp", VectorFormat.SHAPEFILE)
