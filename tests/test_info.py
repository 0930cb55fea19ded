import numpy as np
import pyogrio
import pytest
import rasterio
from affine import Affine

from glnet_geo.info import ClassCount, class_counts, describe, is_class_raster
from glnet_geo.vectorize import vectorize_raster


def class_raster(path, data, crs, transform, nodata=255, names='["bare", "crop", "water"]'):
    with rasterio.open(path, "w", driver="GTiff", width=data.shape[1], height=data.shape[0],
                       count=1, dtype=data.dtype, crs=crs, transform=transform, nodata=nodata,
                       tiled=True, blockxsize=16, blockysize=16) as dst:
        dst.write(data, 1)
        if names:
            dst.update_tags(1, class_names=names)
        dst.write_colormap(1, {0: (10, 20, 30, 255), 1: (250, 200, 0, 255)})
    return path


def classes(height=40, width=50, seed=0):
    data = np.random.default_rng(seed).integers(0, 2, (height, width)).astype(np.uint8)
    data[:5] = 255
    return data


def test_counts_and_planar_areas_over_many_blocks(tmp_path):
    data = classes()
    path = class_raster(tmp_path / "c.tif", data, "EPSG:32633",
                        Affine(0.5, 0, 500000, 0, -0.5, 4e6))
    with rasterio.open(path) as src:
        assert is_class_raster(src) and len(list(src.block_windows(1))) == 12
        counts = class_counts(src)
    ones = int((data == 1).sum())
    assert counts == [
        ClassCount(0, "bare", "#0a141e", int((data == 0).sum()), (data == 0).sum() * 0.25),
        ClassCount(1, "crop", "#fac800", ones, ones * 0.25),
        ClassCount(2, "water", "#000000", 0, 0.0)]  # GDAL fills the table with black


def test_geographic_areas_match_the_polygons(tmp_path):
    data = classes(seed=1)
    path = class_raster(tmp_path / "g.tif", data, "EPSG:4326",
                        Affine(0.001, 0, 10.0, 0, -0.001, 60.0))
    with rasterio.open(path) as src:
        counts = {c.name: c.area_m2 for c in class_counts(src)}
    polygons = pyogrio.read_dataframe(vectorize_raster(path, tmp_path / "g.gpkg"), layer="g")
    expected = polygons.groupby("class_name")["area_m2"].sum()
    for name in ("bare", "crop"):
        assert counts[name] == pytest.approx(expected[name], rel=1e-9)


def test_a_raster_without_names_or_palette_is_not_a_class_raster(tmp_path):
    path = tmp_path / "dem.tif"
    with rasterio.open(path, "w", driver="GTiff", width=4, height=4, count=1, dtype="int16",
                       crs="EPSG:32633", transform=Affine(1, 0, 0, 0, -1, 4)) as dst:
        dst.write(np.arange(16, dtype=np.int16).reshape(4, 4), 1)
    info = describe(path)
    assert info["kind"] == "raster (GTiff)" and "classes" not in info
