import numpy as np
import pytest
import rasterio

from glnet_geo.datasets import synthetic
from glnet_geo.datasets.inria import Inria, binary_mask, parse_tile_name, split_tiles
from glnet_geo.errors import InputError

NAMES = [f"{city}{n}.tif" for city in ("austin", "chicago", "kitsap", "tyrol-w", "vienna")
         for n in range(1, 37)]


def test_tile_names():
    assert parse_tile_name("tyrol-w12.tif") == ("tyrol-w", 12)
    with pytest.raises(InputError, match=r"not named <city><n>.tif"):
        parse_tile_name("image.tif")


def test_city_rule_keeps_tiles_1_to_5_for_validation():
    val = split_tiles(NAMES, "val")
    assert len(val) == 25 and all(parse_tile_name(n)[1] <= 5 for n in val)
    assert len(split_tiles(NAMES, "train")) == 155


def test_paper_rule_is_126_27_27_and_disjoint():
    parts = [split_tiles(NAMES, s, "paper") for s in ("train", "val", "test")]
    assert [len(p) for p in parts] == [126, 27, 27]
    assert len(set().union(*parts)) == 180
    assert parts == [split_tiles(NAMES, s, "paper") for s in ("train", "val", "test")]


def test_split_ignores_the_rest_of_the_path(tmp_path):
    # torchgeo's regex over the full path put every tile of a root like /data2/ in one split
    root = tmp_path / "data2" / "inria1"
    synthetic.write_inria_layout(root, cities=("austin",), tiles_per_city=6, size=32)
    assert [p.name for p, _ in Inria(root, "train").items] == ["austin6.tif"]
    assert len(Inria(root / "AerialImageDataset", "val")) == 5


def test_read_maps_255_to_building(tmp_path):
    synthetic.write_inria_layout(tmp_path, cities=("vienna",), tiles_per_city=6, size=64)
    image, label = Inria(tmp_path, "train").read(0)
    assert image.shape == (3, 64, 64) and set(np.unique(label)) <= {0, 1}
    gt = tmp_path / "AerialImageDataset/train/gt/vienna6.tif"
    with rasterio.open(gt, "r+") as dst:
        data = dst.read(1)
        data[3, 4] = 7
        dst.write(data, 1)
    with pytest.raises(InputError, match=r"values \[7\] \(first at row 3, column 4\)"):
        Inria(tmp_path, "train").read(0)


def test_binary_mask_and_missing_layout(tmp_path):
    assert binary_mask(np.array([[0, 255]])).tolist() == [[0, 1]]
    with pytest.raises(InputError, match=r"AerialImageDataset/train/{images,gt}"):
        Inria(tmp_path)
