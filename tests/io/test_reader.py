from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.enums import Resampling
from rasterio.windows import Window

from glnet_geo.errors import InputError
from glnet_geo.io.reader import (
    RasterInput,
    block_cache,
    data_bands,
    expand_inputs,
    normalize,
    rasters_in,
    select_bands,
)

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"


@dataclass
class Norm:  # the attributes of glnet_geo.checkpoint.Normalization
    scale: float = 255.0
    mean: list[float] = field(default_factory=lambda: [0.5, 0.5, 0.5])
    std: list[float] = field(default_factory=lambda: [0.25, 0.25, 0.25])


def write(path, data, **kwargs):
    profile = dict(driver="GTiff", width=data.shape[2], height=data.shape[1], count=data.shape[0],
                   dtype=data.dtype, crs="EPSG:32631",
                   transform=Affine(2.0, 0, 500000, 0, -2.0, 4000000))
    profile.update(kwargs)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
    return path


@pytest.fixture
def rgba(tmp_path):
    rng = np.random.default_rng(0)
    data = rng.integers(1, 255, (4, 40, 50), dtype=np.uint8)
    data[3] = 255
    data[3, :10, :10] = 0
    return write(tmp_path / "rgba.tif", data, photometric="RGB", alpha="YES")


def test_alpha_band_is_a_mask_not_data(rgba):
    with rasterio.open(rgba) as src:
        assert data_bands(src) == [1, 2, 3]
        assert select_bands(src, [1, 2, 3]) == [1, 2, 3]


def test_band_count_mismatch_names_both_counts_and_the_fix(tmp_path):
    path = write(tmp_path / "four.tif", np.ones((4, 8, 8), np.uint8), photometric="MINISBLACK")
    with rasterio.open(path) as src:
        with pytest.raises(InputError, match=r"4 data band\(s\).*expects 3.*--bands 1,2,3"):
            select_bands(src, [1, 2, 3])
        assert select_bands(src, [1, 2, 3], bands=[4, 3, 2]) == [4, 3, 2]
        with pytest.raises(InputError, match="takes 3"):
            select_bands(src, [1, 2, 3], bands=[1, 2])
        with pytest.raises(InputError, match=r"\[5\]"):
            select_bands(src, [1, 2, 3], bands=[1, 2, 5])


def test_missing_and_non_raster_inputs(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        RasterInput.open(tmp_path / "nope.tif", [1, 2, 3], Norm())
    text = tmp_path / "notes.tif"
    text.write_text("not a raster")
    with pytest.raises(InputError, match="not a raster"):
        RasterInput.open(text, [1, 2, 3], Norm())


def test_normalize_and_fill_masked():
    raw = np.full((3, 2, 2), 255, np.uint8)
    valid = np.array([[True, False], [True, True]])
    x = normalize(raw, valid, Norm())
    assert x.dtype == np.float32
    assert np.allclose(x[:, valid], 2.0) and (x[:, ~valid] == 0).all()


def test_uint16_and_float32_normalisation(tmp_path):
    u16 = write(tmp_path / "u16.tif", np.full((1, 4, 4), 1000, np.uint16))
    f32 = np.full((1, 4, 4), 0.25, np.float32)
    f32[0, 0, 0] = np.nan
    f32 = write(tmp_path / "f32.tif", f32)
    norm = Norm(scale=10000.0, mean=[0.0], std=[0.1])
    with RasterInput.open(u16, [1], norm) as raster:
        x, valid = raster.read(raster.window)
        assert np.allclose(x, 1.0) and valid.all()
    with RasterInput.open(f32, [1], Norm(scale=1.0, mean=[0.0], std=[1.0])) as raster:
        x, valid = raster.read(raster.window)
        assert not valid[0, 0] and valid.sum() == 15
        assert x[0, 0, 0] == 0 and np.allclose(x[0][valid], 0.25)


def test_only_unmasked_integer_rasters_skip_the_mask(tmp_path, rgba):
    data = np.ones((1, 4, 4), np.uint8)
    plain = write(tmp_path / "plain.tif", data)
    cases = {plain: True,
             write(tmp_path / "nodata.tif", data, nodata=0): False,
             write(tmp_path / "float.tif", data.astype(np.float32)): False,
             rgba: False}
    for path, expected in cases.items():
        with RasterInput.open(path, [1], Norm(mean=[0.5], std=[0.25]), bands=[1]) as raster:
            assert raster.all_valid is expected, path.name
    with RasterInput.open(plain, [1], Norm(mean=[0.5], std=[0.25])) as raster:
        assert raster.valid_mask(Window(-1, 0, 4, 4)).tolist() == [[False] + [True] * 3] * 4
        assert raster.read_global(raster.window, (2, 2))[1].all()


def test_block_cache_is_capped_in_megabytes():
    # rasterio hands GDAL an integer GDAL_CACHEMAX in bytes
    with block_cache(64):
        assert rasterio.env.get_gdal_config("GDAL_CACHEMAX") == 64 * 2**20


def test_boundless_read_masks_outside_and_alpha(rgba):
    with RasterInput.open(rgba, [1, 2, 3], Norm()) as raster:
        x, valid = raster.read(Window(-5, -5, 20, 20))
        assert x.shape == (3, 20, 20)
        assert not valid[:15, :15].any()          # outside (5 px) and alpha = 0 (10 px)
        assert valid[15:, 15:].all()
        assert (x[:, ~valid] == 0).all()
        with rasterio.open(rgba) as src:
            inside = src.read([1, 2, 3], window=Window(10, 10, 5, 5))
        assert np.array_equal(raster.read_raw(Window(-5, -5, 20, 20))[0][:, 15:, 15:], inside)
        # entirely outside
        x, valid = raster.read(Window(100, 100, 8, 8))
        assert not valid.any() and (x == 0).all()


def test_nodata_footprint_of_a_real_raster():
    path = SHARED / "rasterio" / "RGB.byte.tif"
    if not path.exists():
        pytest.skip("shared test data not available")
    with RasterInput.open(path, [1, 2, 3], Norm()) as raster:
        _, valid = raster.read(raster.window)
        with rasterio.open(path) as src:
            assert np.array_equal(valid, src.dataset_mask() != 0)
        assert 0 < valid.mean() < 1


def test_global_view_is_a_decimated_read(rgba):
    with RasterInput.open(rgba, [1, 2, 3], Norm()) as raster:
        x, valid = raster.read_global(raster.window, (8, 10))
        assert x.shape == (3, 8, 10) and valid.shape == (8, 10)
        with rasterio.open(rgba) as src:
            raw = src.read([1, 2, 3], out_shape=(3, 8, 10), resampling=Resampling.bilinear)
        expected = normalize(raw, valid, Norm())
        assert np.array_equal(x, expected)
        assert not valid[:2, :2].any() and valid[2:, 2:].all()


def test_decimated_read_is_served_by_overviews(tmp_path):
    path = write(tmp_path / "ovr.tif", np.zeros((1, 256, 256), np.uint8),
                 tiled=True, blockxsize=64, blockysize=64)
    with rasterio.open(path, "r+") as dst:
        dst.build_overviews([4], Resampling.average)
    with rasterio.open(path, "r+") as dst:  # full resolution changes, the overview does not
        dst.write(np.full((1, 256, 256), 200, np.uint8))
    norm = Norm(scale=1.0, mean=[0.0], std=[1.0])
    with RasterInput.open(path, [1], norm) as raster:
        x, _ = raster.read_global(raster.window, (64, 64))
        assert (x == 0).all()
        x, _ = raster.read(Window(0, 0, 64, 64))
        assert (x == 200).all()


def test_rasters_in_a_folder(tmp_path):
    for name in ("b.tif", "a.TIFF", "mosaic.vrt", "notes.txt"):
        (tmp_path / name).write_text("x")
    (tmp_path / "sub.tif").mkdir()
    assert [Path(p).name for p in rasters_in(tmp_path)] == ["a.TIFF", "b.tif", "mosaic.vrt"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="matches no raster"):
        rasters_in(tmp_path / "empty")


def test_expand_inputs(tmp_path):
    for name in ("tiles/b.tif", "tiles/a.tif", "tiles/deep/c.tif", "single.tif", "odd[1].tif"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x")

    def names(paths):
        return [Path(p).relative_to(tmp_path).as_posix() for p in paths]

    assert names(expand_inputs([str(tmp_path / "tiles/*.tif")])) == ["tiles/a.tif", "tiles/b.tif"]
    assert names(expand_inputs([str(tmp_path / "tiles/**/*.tif")])) == [
        "tiles/a.tif", "tiles/b.tif", "tiles/deep/c.tif"]
    assert names(expand_inputs([str(tmp_path / "tiles"), str(tmp_path / "single.tif")])) == [
        "tiles/a.tif", "tiles/b.tif", "single.tif"]
    # An existing file whose name looks like a glob, and GDAL paths, are kept as given.
    assert names(expand_inputs([str(tmp_path / "odd[1].tif")])) == ["odd[1].tif"]
    assert expand_inputs(["/vsicurl/https://example.com/*.tif"]) == [
        "/vsicurl/https://example.com/*.tif"]
    with pytest.raises(InputError, match="matches no file"):
        expand_inputs([str(tmp_path / "nothing/*.tif")])


@pytest.mark.parametrize("kind", ["truncated", "corrupt", "vrt"])
def test_a_damaged_raster_names_the_file_the_window_and_gdals_reason(damaged_raster, kind):
    from glnet_geo.errors import RasterReadError

    path = damaged_raster(kind)
    with RasterInput.open(path, [1, 2, 3], Norm()) as raster:
        with pytest.raises(RasterReadError) as caught:
            raster.read(Window(0, 0, raster.width, raster.height))
    message = str(caught.value)
    assert "\n" not in message
    assert str(path) in message and "window x 0-95, y 0-95" in message
    expected = {"truncated": ("TIFFFillTile", "damaged or incomplete"),
                "corrupt": ("Decoding error", "damaged or incomplete"),
                "vrt": ("source.tif: No such file or directory", "rebuild the VRT")}[kind]
    for word in expected:
        assert word in message, message
    assert "See previous exception" not in message


def test_a_read_failure_from_another_library_is_still_one_line(damaged_raster):
    from glnet_geo.io.reader import unreadable_raster

    path = damaged_raster("corrupt")
    with rasterio.open(path) as src:
        with pytest.raises(rasterio.errors.RasterioIOError) as caught:
            src.read()
    error = unreadable_raster(caught.value)
    assert "corrupt.tif, band 1" in str(error) and "Decoding error" in str(error)
    assert unreadable_raster(FileNotFoundError("elsewhere")) is None


def test_a_given_nodata_value_masks_where_every_band_holds_it(tmp_path, rgba):
    data = np.full((3, 6, 8), 7, np.uint8)
    data[:, :, :2] = 0  # an untagged collar
    data[0, 0, 5] = 0  # one band at 0 is a dark pixel, not nodata
    plain = write(tmp_path / "collar.tif", data)
    with RasterInput.open(plain, [1, 2, 3], Norm(), nodata=0) as raster:
        assert not raster.all_valid
        valid = raster.valid_mask(raster.window)
        assert not valid[:, :2].any() and valid[:, 2:].all()
        assert not raster.read(raster.window)[1][:, :2].any()
    with RasterInput.open(rgba, [1, 2, 3], Norm(), nodata=0) as raster:  # on top of alpha
        assert not raster.valid_mask(raster.window)[:10, :10].any()
