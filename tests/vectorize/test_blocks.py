"""What each block polygonizes: nodata, masks, kept classes, simplification."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
import rasterio.features
import shapely
from mask_factory import PIXEL, UTM_TRANSFORM, blobs, count_regions, read, write_mask

from glnet_geo.vectorize import vectorize_raster


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
