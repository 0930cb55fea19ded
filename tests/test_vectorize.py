from __future__ import annotations

import json
from collections import deque
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyogrio
import pyproj
import pytest
import rasterio
import rasterio.features
import shapely
from affine import Affine
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rasterio.transform import from_origin
from shapely import affinity

from glnet_geo.errors import InputError, OutputError, OutputExistsError
from glnet_geo.vectorize import (
    AreaMethod,
    Connectivity,
    VectorFormat,
    area_method,
    resolve_format,
    vectorize_raster,
)

UTM = "EPSG:32633"
PIXEL = 0.5  # metres
UTM_TRANSFORM = from_origin(500_000.0, 4_000_000.0, PIXEL, PIXEL)


def write_mask(path: Path, data: np.ndarray, *, crs: str | None = UTM,
               transform: Affine = UTM_TRANSFORM, nodata: float | None = None,
               mask: np.ndarray | None = None, band_tags: dict | None = None,
               tags: dict | None = None) -> Path:
    """A single-band class GeoTIFF (optionally with an internal mask and tags)."""
    data = np.asarray(data)
    if data.ndim == 2:
        data = data[None]
    with rasterio.open(path, "w", driver="GTiff", width=data.shape[2], height=data.shape[1],
                       count=data.shape[0], dtype=data.dtype, crs=crs, transform=transform,
                       nodata=nodata) as dst:
        dst.write(data)
        if mask is not None:
            dst.write_mask(np.where(mask, 255, 0).astype(np.uint8))
        if band_tags:
            dst.update_tags(1, **band_tags)
        if tags:
            dst.update_tags(**tags)
    return path


def count_regions(data: np.ndarray, valid: np.ndarray, connectivity: int) -> int:
    """Connected regions of equal value among valid pixels (breadth-first search)."""
    steps = [(0, 1), (1, 0), (0, -1), (-1, 0)]
    if connectivity == 8:
        steps += [(1, 1), (1, -1), (-1, 1), (-1, -1)]
    seen = ~valid.copy()
    height, width = data.shape
    regions = 0
    for i, j in zip(*np.nonzero(~seen), strict=True):
        if seen[i, j]:
            continue
        regions += 1
        seen[i, j] = True
        queue = deque([(i, j)])
        while queue:
            y, x = queue.popleft()
            for dy, dx in steps:
                v, u = y + dy, x + dx
                if (0 <= v < height and 0 <= u < width and not seen[v, u]
                        and data[v, u] == data[y, x]):
                    seen[v, u] = True
                    queue.append((v, u))
    return regions


def blobs(height: int, width: int, classes: int, cell: int, seed: int) -> np.ndarray:
    """Seeded blocky classes with single-pixel noise (regions of many shapes and sizes)."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, classes, (height // cell + 1, width // cell + 1))
    data = np.kron(coarse, np.ones((cell, cell), int))[:height, :width]
    noise = rng.random((height, width)) < 0.08
    data[noise] = rng.integers(0, classes, noise.sum())
    return data.astype(np.uint8)


def read(path: Path) -> gpd.GeoDataFrame:
    return pyogrio.read_dataframe(path, layer=path.stem)


def assert_matches_pixels(frame: gpd.GeoDataFrame, data: np.ndarray, valid: np.ndarray,
                          connectivity: int, pixel_area: float, rel: float) -> None:
    """Feature count = connected regions; per class, area = pixel count x pixel area."""
    assert len(frame) == count_regions(data, valid, connectivity)
    assert frame.is_valid.all()
    for value in np.unique(data[valid]):
        expected = (data[valid] == value).sum() * pixel_area
        assert frame.area_m2[frame.class_id == value].sum() == pytest.approx(expected, rel=rel)


# --------------------------------------------------------------------------- regions and seams

@pytest.mark.parametrize("connectivity", [4, 8])
def test_one_feature_per_region_across_block_seams(tmp_path, connectivity):
    data = blobs(61, 75, classes=3, cell=7, seed=1)
    nodata = np.random.default_rng(2).random(data.shape) < 0.05
    data[nodata] = 255
    mask = write_mask(tmp_path / "classes.tif", data, nodata=255)

    small = vectorize_raster(mask, tmp_path / "small.gpkg", block_size=16,
                             connectivity=connectivity)
    whole = vectorize_raster(mask, tmp_path / "whole.gpkg", block_size=4096,
                             connectivity=connectivity)

    frame = read(small)
    assert_matches_pixels(frame, data, ~nodata, connectivity, PIXEL * PIXEL, rel=1e-3)
    assert (frame.area == frame.area_m2).all()  # metres: map area = area_m2
    expected_type = "Polygon" if connectivity == 4 else "MultiPolygon"
    assert set(frame.geom_type) == {expected_type}
    # The blocks leave no trace: the same regions as polygonizing in one block.
    reference = read(whole)
    key = ["class_id", "area_m2"]
    assert (frame.sort_values(key)[key].to_numpy()
            == reference.sort_values(key)[key].to_numpy()).all()
    assert shapely.equals(shapely.union_all(frame.geometry.values),
                          shapely.union_all(reference.geometry.values))


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10_000), block=st.integers(2, 13),
       connectivity=st.sampled_from([4, 8]), height=st.integers(3, 30),
       width=st.integers(3, 30), cell=st.integers(1, 4))
def test_region_count_for_any_block_layout(tmp_path, seed, block, connectivity, height, width,
                                           cell):
    rng = np.random.default_rng(seed)
    data = blobs(height, width, classes=3, cell=cell, seed=seed)
    valid = rng.random((height, width)) > 0.1
    mask = write_mask(tmp_path / f"m{seed}.tif", data, mask=valid)
    out = vectorize_raster(mask, tmp_path / f"m{seed}.gpkg", block_size=block,
                           connectivity=connectivity, overwrite=True)
    assert_matches_pixels(read(out), data, valid, connectivity, PIXEL * PIXEL, rel=1e-3)


def test_region_joined_only_through_far_blocks(tmp_path):
    # A comb: teeth in different blocks, joined by the last rows only.
    data = np.zeros((64, 64), np.uint8)
    data[:, 2:62:8] = 1
    data[60:, 2:62] = 1
    mask = write_mask(tmp_path / "comb.tif", data)
    frame = read(vectorize_raster(mask, tmp_path / "comb.gpkg", block_size=16))
    teeth = frame[frame.class_id == 1]
    assert len(teeth) == 1
    assert teeth.area_m2.iloc[0] == pytest.approx(data.sum() * PIXEL * PIXEL)
    assert len(frame[frame.class_id == 0]) == count_regions(data == 0, data == 0, 4)


def test_corner_touch_across_a_block_corner(tmp_path):
    data = np.zeros((32, 32), np.uint8)
    data[15, 15] = data[16, 16] = 1  # diagonal neighbours across the corner of four blocks
    mask = write_mask(tmp_path / "corner.tif", data)
    four = read(vectorize_raster(mask, tmp_path / "four.gpkg", block_size=16, classes=[1]))
    eight = read(vectorize_raster(mask, tmp_path / "eight.gpkg", block_size=16, classes=[1],
                                  connectivity=Connectivity.EIGHT))
    assert len(four) == 2
    assert len(eight) == 1
    assert eight.geometry.iloc[0].geom_type == "MultiPolygon"
    assert eight.area_m2.iloc[0] == pytest.approx(2 * PIXEL * PIXEL)


def test_island_in_a_hole_across_a_seam_with_8_connectivity(tmp_path):
    data = np.zeros((24, 24), np.uint8)
    data[2, 2:9] = data[8, 2:9] = data[2:9, 2] = data[2:9, 8] = 1  # a ring ...
    data[3, 3] = 1
    data[4, 4] = 1  # ... an island in its hole touching it at a corner ...
    data[5, 8:21] = 1  # ... and a tail across the seam at column 16
    mask = write_mask(tmp_path / "ring.tif", data)
    frame = read(vectorize_raster(mask, tmp_path / "ring.gpkg", block_size=16, classes=[1],
                                  connectivity=8))
    assert len(frame) == 1
    assert frame.area_m2.iloc[0] == pytest.approx(data.sum() * PIXEL * PIXEL)


# --------------------------------------------------------------------------- areas and CRSs

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


# --------------------------------------------------------------------------- nodata and classes

def test_nodata_and_masked_pixels_give_no_polygon(tmp_path):
    data = np.full((30, 30), 2, np.uint8)
    data[5:10, 5:25] = 255  # nodata value
    valid = data != 255
    valid[20:25, 0:30] = False  # internal mask
    mask = write_mask(tmp_path / "nd.tif", data, nodata=255)
    with rasterio.open(mask, "r+") as dst:
        dst.write_mask(np.where(valid, 255, 0).astype(np.uint8))
    frame = read(vectorize_raster(mask, tmp_path / "nd.gpkg", block_size=8))
    assert set(frame.class_id) == {2}
    assert frame.area_m2.sum() == pytest.approx(valid.sum() * PIXEL * PIXEL)
    holes = shapely.box(*(UTM_TRANSFORM @ (5, 5)), *(UTM_TRANSFORM @ (25, 10)))
    assert shapely.union_all(frame.geometry.values).intersection(holes).area == 0


def test_classes_option_keeps_only_those(tmp_path):
    data = blobs(30, 30, classes=4, cell=5, seed=4)
    mask = write_mask(tmp_path / "c.tif", data)
    frame = read(vectorize_raster(mask, tmp_path / "c.gpkg", classes=[1, 3], block_size=8))
    assert set(frame.class_id) == {1, 3}
    valid = np.isin(data, [1, 3])
    assert len(frame) == count_regions(data, valid, 4)


@pytest.mark.parametrize(("band_tags", "tags", "override", "expected"), [
    ({"class_names": json.dumps(["water", "forest"])}, None, None, ["water", "forest"]),
    (None, {"class_names": json.dumps(["sea", "wood"])}, None, ["sea", "wood"]),
    ({"class_names": json.dumps(["water", "forest"])}, None, ["a", "b"], ["a", "b"]),
    (None, None, None, ["class_0", "class_1"]),
])
def test_class_names(tmp_path, band_tags, tags, override, expected):
    data = np.zeros((8, 8), np.uint8)
    data[:, 4:] = 1
    mask = write_mask(tmp_path / "n.tif", data, band_tags=band_tags, tags=tags)
    frame = read(vectorize_raster(mask, tmp_path / "n.gpkg", class_names=override))
    assert frame.sort_values("class_id").class_name.tolist() == expected


# --------------------------------------------------------------------------- options

def test_min_area_drops_small_regions_and_fills_small_holes(tmp_path):
    data = np.zeros((40, 40), np.uint8)
    data[4:36, 4:36] = 1
    data[10:12, 10:12] = 0   # 4 px hole: filled
    data[20:30, 20:30] = 2   # 100 px region, a hole of class 1 that stays
    data[38:40, 0:2] = 3     # 4 px region: dropped
    mask = write_mask(tmp_path / "a.tif", data)
    frame = read(vectorize_raster(mask, tmp_path / "a.gpkg", min_area=5 * PIXEL * PIXEL,
                                  block_size=16))
    assert 3 not in set(frame.class_id)
    square = frame[frame.class_id == 1].geometry.iloc[0]
    assert len(square.interiors) == 1  # the class-2 hole; the 4 px one was filled
    assert frame[frame.class_id == 1].area_m2.iloc[0] == pytest.approx(
        (32 * 32 - 100) * PIXEL * PIXEL)


def test_simplify_keeps_neighbours_sharing_edges(tmp_path):
    yy, xx = np.mgrid[:48, :48]
    data = (yy > 0.6 * xx + 5 + 3 * np.sin(xx / 3)).astype(np.uint8)
    data[30:40, 5:15] = 2
    mask = write_mask(tmp_path / "s.tif", data)
    raw = read(vectorize_raster(mask, tmp_path / "raw.gpkg", block_size=16))
    simple = read(vectorize_raster(mask, tmp_path / "simple.gpkg", block_size=16,
                                   simplify=2 * PIXEL))
    assert len(simple) == len(raw)
    assert simple.is_valid.all()
    assert shapely.get_num_coordinates(simple.geometry.values).sum() < 0.6 * (
        shapely.get_num_coordinates(raw.geometry.values).sum())
    # Still a coverage of the raster: no gaps, no overlaps.
    total = 48 * 48 * PIXEL * PIXEL
    assert simple.area.sum() == pytest.approx(total)
    assert shapely.union_all(simple.geometry.values).area == pytest.approx(total)
    assert simple.area_m2.sum() == pytest.approx(total)


def test_regularize_turns_a_jagged_rectangle_into_four_corners(tmp_path):
    rng = np.random.default_rng(5)
    truth_px = affinity.rotate(shapely.box(-24, -14, 24, 14), 23, origin=(0, 0))
    truth_px = affinity.translate(truth_px, 40, 36)
    data = rasterio.features.rasterize([truth_px], out_shape=(72, 80)).astype(np.uint8)
    padded = np.pad(data, 1)
    neighbours = (padded[:-2, 1:-1] + padded[2:, 1:-1] + padded[1:-1, :-2]
                  + padded[1:-1, 2:])
    jag = (neighbours > 0) & (neighbours < 4) & (rng.random(data.shape) < 0.3)
    data = np.where(jag, 1 - data, data).astype(np.uint8)
    mask = write_mask(tmp_path / "b.tif", data)
    frame = read(vectorize_raster(mask, tmp_path / "b.gpkg", classes=[1], regularize=True,
                                  min_area=10 * PIXEL * PIXEL, block_size=32))
    assert len(frame) == 1
    building = frame.geometry.iloc[0]
    assert len(building.exterior.coords) == 5  # four corners, closed
    truth = affinity.affine_transform(truth_px, UTM_TRANSFORM.to_shapely())
    assert building.intersection(truth).area / building.union(truth).area >= 0.9
    assert frame.area_m2.iloc[0] == pytest.approx(building.area)


def test_confidence_is_the_mean_class_probability(tmp_path):
    data = np.zeros((20, 24), np.uint8)
    data[:, 12:] = 1
    mask = write_mask(tmp_path / "p.tif", data)
    probs = np.zeros((2, 20, 24), np.uint8)
    probs[0] = 200
    probs[1, :, :18] = 100
    probs[1, :, 18:] = 250
    prob_path = write_mask(tmp_path / "probs.tif", probs)
    frame = read(vectorize_raster(mask, tmp_path / "p.gpkg", probabilities=prob_path,
                                  block_size=8)).sort_values("class_id")
    assert frame.confidence.tolist() == pytest.approx([200 / 255, 175 / 255])


def test_nothing_to_write_gives_an_empty_layer_and_one_warning(tmp_path, caplog):
    mask = write_mask(tmp_path / "z.tif", np.zeros((8, 8), np.uint8))
    out = vectorize_raster(mask, tmp_path / "z.gpkg", classes=[7])
    info = pyogrio.read_info(out, layer="z")
    assert info["features"] == 0
    assert list(info["fields"]) == ["class_id", "class_name", "area_m2"]
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warnings == ["wrote no feature to " + str(out) + ": z.tif has no class 7 pixel; "
                        "check --classes and the raster's values"]


# --------------------------------------------------------------------------- styles

def palette_mask(path: Path) -> Path:
    """Classes 0..2 with names and a colour table (as predict writes them)."""
    data = blobs(16, 16, classes=3, cell=4, seed=3)
    write_mask(path, data, band_tags={"class_names": '["bare", "crop", "water"]'})
    with rasterio.open(path, "r+") as dst:
        dst.write_colormap(1, {0: (200, 200, 200, 255), 1: (250, 200, 0, 255),
                               2: (0, 0, 255, 255)})
    return path


def categories_of(qml: str) -> list[tuple[str, str]]:
    """(class name, fill colour) of each category of a QGIS categorised style."""
    import xml.etree.ElementTree as ET

    root = ET.fromstring(qml)
    assert root.find("renderer-v2").get("attr") == "class_name"
    colors = {s.get("name"): s.find(".//Option[@name='color']").get("value")
              for s in root.iter("symbol")}
    return [(c.get("value"), colors[c.get("symbol")]) for c in root.iter("category")]


def test_geopackage_gets_a_default_layer_style(tmp_path):
    mask = palette_mask(tmp_path / "m.tif")
    out = vectorize_raster(mask, tmp_path / "landcover.gpkg", classes=[1, 2])
    assert [name for name, _ in pyogrio.list_layers(out)] == ["landcover", "layer_styles"]
    styles = pyogrio.read_dataframe(out, layer="layer_styles")
    assert len(styles) == 1
    row = styles.iloc[0]
    assert (row.f_table_name, row.f_geometry_column, bool(row.useAsDefault)) == (
        "landcover", pyogrio.read_info(out, layer="landcover")["geometry_name"], True)
    assert categories_of(row.styleQML) == [("crop", "250,200,0,255"), ("water", "0,0,255,255")]
    assert not (tmp_path / "landcover.qml").exists()


@pytest.mark.parametrize("suffix", [".geojson", ".shp", ".fgb", ".parquet"])
def test_other_formats_get_a_qml_beside_them(tmp_path, suffix):
    mask = palette_mask(tmp_path / "m.tif")
    vectorize_raster(mask, tmp_path / f"landcover{suffix}")
    qml = (tmp_path / "landcover.qml").read_text()
    assert categories_of(qml) == [("bare", "200,200,200,255"), ("crop", "250,200,0,255"),
                                  ("water", "0,0,255,255")]


def test_raster_style_of_the_same_name_is_kept(tmp_path, caplog):
    mask = palette_mask(tmp_path / "classes.tif")
    (tmp_path / "classes.qml").write_text("<qgis><pipe><rasterrenderer/></pipe></qgis>")
    vectorize_raster(mask, tmp_path / "classes.geojson")
    assert "rasterrenderer" in (tmp_path / "classes.qml").read_text()
    assert "styles the class raster of the same base name" in caplog.text


# --------------------------------------------------------------------------- formats

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


# --------------------------------------------------------------------------- bad input

def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.startswith("."))


def test_rejects_multiband_float_and_crs_less_rasters(tmp_path):
    two = write_mask(tmp_path / "two.tif", np.zeros((2, 8, 8), np.uint8))
    floats = write_mask(tmp_path / "float.tif", np.zeros((8, 8), np.float32))
    no_crs = write_mask(tmp_path / "nocrs.tif", np.zeros((8, 8), np.uint8), crs=None)
    with pytest.raises(InputError, match="2 bands"):
        vectorize_raster(two, tmp_path / "o.gpkg")
    with pytest.raises(InputError, match="float32"):
        vectorize_raster(floats, tmp_path / "o.gpkg")
    with pytest.raises(InputError, match="no CRS"):
        vectorize_raster(no_crs, tmp_path / "o.gpkg")
    with pytest.raises(InputError, match="does not exist"):
        vectorize_raster(tmp_path / "missing.tif", tmp_path / "o.gpkg")
    assert not (tmp_path / "o.gpkg").exists()
    assert leftovers(tmp_path) == []


def test_existing_output_is_kept_without_overwrite(tmp_path):
    mask = write_mask(tmp_path / "m.tif", np.ones((8, 8), np.uint8))
    out = tmp_path / "o.shp"
    out.write_text("keep me")
    with pytest.raises(OutputExistsError, match="--overwrite"):
        vectorize_raster(mask, out)
    assert out.read_text() == "keep me"
    vectorize_raster(mask, out, overwrite=True)
    assert len(read(out)) == 1
    with pytest.raises(OutputError, match="does not exist"):
        vectorize_raster(mask, tmp_path / "nowhere" / "o.gpkg")


def test_failure_midway_leaves_nothing(tmp_path, monkeypatch):
    import glnet_geo.vectorize as module

    mask = write_mask(tmp_path / "m.tif", blobs(40, 40, classes=3, cell=4, seed=7))

    def broken(self, regions):
        raise RuntimeError("disk full")

    monkeypatch.setattr(module._Finisher, "__call__", broken)
    with pytest.raises(RuntimeError):
        vectorize_raster(mask, tmp_path / "o.geojson", block_size=8)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.tif"]


def test_bad_options(tmp_path):
    mask = write_mask(tmp_path / "m.tif", np.ones((8, 8), np.uint8))
    with pytest.raises(InputError, match="connectivity 6"):
        vectorize_raster(mask, tmp_path / "o.gpkg", connectivity=6)
    with pytest.raises(InputError, match="--min-area -1"):
        vectorize_raster(mask, tmp_path / "o.gpkg", min_area=-1)
    with pytest.raises(InputError, match="block size 1"):
        vectorize_raster(mask, tmp_path / "o.gpkg", block_size=1)
    probs = write_mask(tmp_path / "p.tif", np.ones((2, 4, 4), np.uint8))
    with pytest.raises(InputError, match="4x4 px"):
        vectorize_raster(mask, tmp_path / "o.gpkg", probabilities=probs)
    assert leftovers(tmp_path) == []
