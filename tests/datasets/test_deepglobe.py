import numpy as np
import pytest
from PIL import Image

from glnet_geo.classes import DEEPGLOBE
from glnet_geo.datasets import synthetic
from glnet_geo.datasets.deepglobe import DeepGlobe, paper_split_ids, rgb_to_classes
from glnet_geo.errors import InputError


def test_paper_split_ships_with_the_package():
    counts = [len(paper_split_ids(s)) for s in ("train", "val", "test")]
    assert counts == [454, 207, 142]
    assert len(set().union(*(paper_split_ids(s) for s in ("train", "val", "test")))) == 803


def test_layout_splits_and_classes(tmp_path):
    synthetic.write_deepglobe_layout(tmp_path, count=2, size=64, seed=0)
    synthetic.write_deepglobe_layout(tmp_path, count=1, size=64, seed=7, folder="test_data")
    train, test = DeepGlobe(tmp_path, "train"), DeepGlobe(tmp_path / "data", "test")
    assert (len(train), len(test)) == (2, 1)
    image, label = train.read(0)
    assert image.shape == (3, 64, 64) and label.shape == (64, 64)
    assert label[0, 0] == DEEPGLOBE.ignore_index
    assert set(np.unique(label)) <= set(range(7))


def test_paper_split_finds_ids_in_either_folder(tmp_path):
    ids = paper_split_ids("test")
    synthetic.write_deepglobe_layout(tmp_path, size=64, ids=ids[:1])
    synthetic.write_deepglobe_layout(tmp_path, size=64, ids=ids[1:2], folder="test_data")
    dataset = DeepGlobe(tmp_path, "test", paper_split=True)
    assert [p.name for p, _ in dataset.items] == [f"{i}_sat.jpg" for i in ids[:2]]
    with pytest.raises(InputError, match="paper's train split"):
        DeepGlobe(tmp_path, "train", paper_split=True)


def test_palette_tolerates_near_colours_and_names_foreign_ones():
    mask = np.zeros((4, 5, 3), dtype=np.uint8)
    mask[0, 0] = (3, 250, 252)  # near urban (0, 255, 255)
    assert rgb_to_classes(mask)[0, 0] == 0
    mask[2, 3] = (255, 0, 0)
    with pytest.raises(InputError, match=r"1 pixels .*\(255, 0, 0\).*row 2, column 3"):
        rgb_to_classes(mask, name="m.png")


def test_root_without_the_layout(tmp_path):
    (tmp_path / "stuff").mkdir()
    with pytest.raises(InputError, match=r"expected .*data/training_data.*found \['stuff'\]"):
        DeepGlobe(tmp_path)


def test_mask_with_foreign_colours_fails_on_read(tmp_path):
    (path,) = synthetic.write_deepglobe_layout(tmp_path, count=1, size=32)
    mask_path = path.parent.parent / "masks" / path.name.replace("_sat.jpg", "_mask.png")
    mask = np.asarray(Image.open(mask_path)).copy()
    mask[5, 6] = (128, 128, 128)
    Image.fromarray(mask).save(mask_path)
    with pytest.raises(InputError, match=r"_mask.png has 1 pixels"):
        DeepGlobe(tmp_path).read(0)


def test_crossvali_is_the_official_validation_list(tmp_path):
    assert paper_split_ids("crossvali") == paper_split_ids("val")
    assert len(paper_split_ids("crossvali")) == 207 and len(paper_split_ids("test")) == 142
    ids = paper_split_ids("crossvali")
    synthetic.write_deepglobe_layout(tmp_path, size=64, ids=ids[:2])
    dataset = DeepGlobe(tmp_path, "crossvali", paper_split=True)
    assert [p.name for p, _ in dataset.items] == [f"{i}_sat.jpg" for i in ids[:2]]
    with pytest.raises(InputError, match=r"crossvali.txt \(207 ids\); add --paper-split"):
        DeepGlobe(tmp_path, "crossvali")
