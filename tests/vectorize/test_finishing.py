"""Finishing regions into features: min-area, regularization, confidence."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
import rasterio.features
import shapely
from mask_factory import PIXEL, UTM_TRANSFORM, read, write_mask
from shapely import affinity

from glnet_geo.vectorize import vectorize_raster


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
