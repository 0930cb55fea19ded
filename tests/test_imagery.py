"""Profiles of the training imagery and the one-line warning for inputs unlike it."""

from __future__ import annotations

import rasterio
from affine import Affine

from glnet_geo.checkpoint import ModelConfig
from glnet_geo.imagery import ImageryProfile, input_mismatch, pixel_size_m, profile_rasters

EIGHT_BIT_2M = ImageryProfile(dtype="uint8", low=[20.0] * 3, high=[230.0] * 3, pixel_size=2.0)


def test_profile_of_training_rasters(make_raster):
    paths = [make_raster("a.tif", seed=1), make_raster("b.tif", seed=2)]
    profile = profile_rasters(paths)
    assert profile.dtype == "uint8" and profile.pixel_size == 2.0
    assert len(profile.low) == len(profile.high) == 3
    assert all(0 <= lo < hi <= 255 for lo, hi in zip(profile.low, profile.high, strict=True))
    assert profile_rasters(paths, pixel_size=0.5).pixel_size == 0.5


def test_the_profile_travels_in_the_checkpoint_config():
    config = ModelConfig(class_names=["a", "b"], imagery=EIGHT_BIT_2M)
    again = ModelConfig.from_dict(config.to_dict())
    assert again.imagery == EIGHT_BIT_2M
    assert ModelConfig.from_dict({"class_names": ["a", "b"]}).imagery is None  # older files


def test_an_input_like_the_training_imagery_gives_no_warning(make_raster):
    path = make_raster()
    with rasterio.open(path) as src:
        assert input_mismatch(profile_rasters([path]), src, [1, 2, 3], "scene.tif") is None


def test_a_uint16_raster_for_an_8bit_model(make_raster):
    with rasterio.open(make_raster(dtype="uint16")) as src:
        message = input_mismatch(EIGHT_BIT_2M, src, [1, 2, 3], "scene.tif")
    assert message.count("\n") == 0
    assert message.startswith("scene.tif is uint16 but the model was trained on uint8")
    assert "gdal_translate -ot Byte -scale" in message
    assert "band 1 spans" in message and "predictions may be wrong" in message


def test_values_far_from_the_training_range(make_raster):
    dark = ImageryProfile(dtype="uint8", low=[0.0] * 3, high=[20.0] * 3)
    with rasterio.open(make_raster()) as src:
        message = input_mismatch(dark, src, [1, 2, 3], "scene.tif")
    assert "band 1 spans" in message and "training imagery 0..20" in message
    assert "gdal_translate -scale" in message


def test_a_pixel_size_more_than_one_and_a_half_times_off(make_raster):
    half_metre = ImageryProfile(dtype="uint8", pixel_size=0.5)
    with rasterio.open(make_raster()) as src:
        message = input_mismatch(half_metre, src, [1, 2, 3], "scene.tif")
    assert "has 2 m pixels, the model was trained at 0.5 m" in message
    assert "gdalwarp -tr 0.5 0.5 -r bilinear -of VRT scene.tif" in message
    close = ImageryProfile(dtype="uint8", pixel_size=1.5)
    with rasterio.open(make_raster("b.tif")) as src:
        assert input_mismatch(close, src, [1, 2, 3], "b.tif") is None


def test_pixel_size_of_a_geographic_raster(make_raster):
    degrees = Affine(1e-5, 0, 10.0, 0, -1e-5, 0.0)  # at the equator: about 1.1 m
    with rasterio.open(make_raster(crs="EPSG:4326", transform=degrees)) as src:
        assert abs(pixel_size_m(src) - 1.11) < 0.01


def test_an_alpha_band_is_not_profiled(make_raster):
    profile = profile_rasters([make_raster(alpha=True)])
    assert len(profile.low) == 3
    with rasterio.open(make_raster("b.tif")) as src:  # a 3-band profile, 2 bands chosen
        assert input_mismatch(profile, src, [1, 2], "b.tif") is None
