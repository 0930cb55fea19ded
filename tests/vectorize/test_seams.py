"""Regions cut by block seams are joined back: one region, one feature."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mask_factory import PIXEL, assert_matches_pixels, blobs, count_regions, read, write_mask

from glnet_geo.vectorize import Connectivity, vectorize_raster


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
