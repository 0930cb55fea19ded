import itertools
from collections import Counter

import numpy as np
import pytest
import rasterio
import rasterio.shutil
from affine import Affine
from rasterio.enums import Resampling

from glnet_geo.io.overviews import mode_2x2, overview_factors, write_mode_overviews
from glnet_geo.io.writer import CogWriter

NODATA = 255
TRANSFORM = Affine(1, 0, 500000, 0, -1, 4600000)


def majority(block, nodata):
    """The rule, one block at a time: most valid pixels, ties to the first in reading order."""
    valid = [v for v in block if v != nodata]
    if not valid:
        return nodata
    counts = Counter(valid)
    return max(valid, key=lambda v: (counts[v], -valid.index(v)))


def blocks_of(array):
    return [list(array[r:r + 2, c:c + 2].ravel()) for r in range(0, array.shape[0], 2)
            for c in range(0, array.shape[1], 2)]


def test_mode_2x2_on_every_block_of_three_classes_and_nodata():
    blocks = list(itertools.product([0, 1, 2, NODATA], repeat=4))  # 256 blocks, all cases
    pixels = np.zeros((2, 2 * len(blocks)), np.uint8)
    for i, (a, b, c, d) in enumerate(blocks):
        pixels[:, 2 * i:2 * i + 2] = [[a, b], [c, d]]
    expected = [majority(list(block), NODATA) for block in blocks]
    assert mode_2x2(pixels, NODATA).ravel().tolist() == expected


@pytest.mark.parametrize("nodata", [NODATA, None])
@pytest.mark.parametrize("shape", [(5, 7), (1, 1), (4, 3)])
def test_mode_2x2_odd_sides_count_nothing_beyond_the_edge(shape, nodata):
    pixels = np.random.default_rng(sum(shape)).integers(0, 3, shape).astype(np.uint8)
    result = mode_2x2(pixels, nodata)
    assert result.shape == (-(-shape[0] // 2), -(-shape[1] // 2))
    padded = np.full((result.shape[0] * 2, result.shape[1] * 2), -1)
    padded[:shape[0], :shape[1]] = pixels
    expected = [majority(block, -1) for block in blocks_of(padded)]
    assert result.ravel().tolist() == expected


def write(path, pixels, **profile):
    height, width = pixels.shape
    with rasterio.open(path, "w", driver="GTiff", width=width, height=height, count=1,
                       dtype="uint8", crs="EPSG:32631", transform=TRANSFORM, tiled=True,
                       blockxsize=128, blockysize=128, **profile) as dst:
        dst.write(pixels, 1)


@pytest.mark.parametrize("width, height", [(100, 90), (129, 40), (256, 257), (300, 700),
                                           (1030, 257), (1024, 1025)])
def test_overview_factors_are_those_of_gdals_cog_driver(tmp_path, width, height):
    write(tmp_path / "in.tif", np.zeros((height, width), np.uint8))
    rasterio.shutil.copy(tmp_path / "in.tif", tmp_path / "cog.tif", driver="COG", BLOCKSIZE=128)
    with rasterio.open(tmp_path / "cog.tif") as cog:
        assert overview_factors(width, height, 128) == cog.overviews(1)


def test_written_overviews_are_the_cascaded_majority_and_agree_with_gdals_mode(tmp_path):
    # 2 x 2 blocks of one class with one odd pixel: the majority is unambiguous at level 1
    rng = np.random.default_rng(0)
    height, width = 600, 530
    classes = rng.integers(0, 4, (height // 2, width // 2)).astype(np.uint8)
    pixels = np.kron(classes, np.ones((2, 2), np.uint8))
    rows, cols = rng.integers(0, 2, classes.shape), rng.integers(0, 2, classes.shape)
    r, c = np.indices(classes.shape)
    pixels[2 * r + rows, 2 * c + cols] = (classes + 1) % 4
    pixels[:40, :60] = NODATA
    ours, gdal = tmp_path / "ours.tif", tmp_path / "gdal.tif"
    write(ours, pixels, nodata=NODATA)
    write(gdal, pixels, nodata=NODATA)
    assert write_mode_overviews(ours, 128) == [2, 4, 8]
    with rasterio.open(gdal, "r+") as dst:
        dst.build_overviews([2, 4, 8], Resampling.mode)
    below = pixels
    for level in range(3):
        with (rasterio.open(ours, OVERVIEW_LEVEL=level) as mine,
              rasterio.open(gdal, OVERVIEW_LEVEL=level) as theirs):
            overview = mine.read(1)
            assert np.array_equal(overview, mode_2x2(below, NODATA))
            if level == 0:
                assert np.array_equal(overview, theirs.read(1))
        below = overview


def test_small_raster_gets_no_overviews(tmp_path):
    write(tmp_path / "small.tif", np.zeros((100, 128), np.uint8))
    assert write_mode_overviews(tmp_path / "small.tif", 128) == []
    with rasterio.open(tmp_path / "small.tif") as src:
        assert src.overviews(1) == []


def test_mode_overviews_refuse_an_internal_mask(tmp_path):
    with pytest.raises(ValueError, match="internal mask"):
        CogWriter(tmp_path / "x.tif", crs=None, transform=Affine.identity(), width=10,
                  height=10, count=1, internal_mask=True, overview_resampling="mode")
