"""The demo library function at a tiny size (the full ``make demo`` is not run here)."""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pytest
import rasterio

from glnet_geo.checkpoint import load_checkpoint
from glnet_geo.datasets import synthetic
from glnet_geo.demo import ROWS, DemoSettings, run_demo, score_classes, write_sample_scene
from glnet_geo.errors import InputError, OutputExistsError

TINY = DemoSettings(sample_size=256, train_scenes=2, steps_global=2, steps_local=1,
                    steps_sharing=1)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    output = tmp_path_factory.mktemp("demo") / "out"
    return run_demo(output, TINY, echo=lambda line: None)


def test_demo_writes_every_output(demo):
    files = demo.files
    for path in files.values():
        assert path.is_file(), path
    with rasterio.open(files["class raster (COG)"]) as classes, \
            rasterio.open(files["sample scene (input)"]) as scene:
        assert classes.crs == scene.crs and classes.crs.to_epsg() == 32631
        assert classes.transform == scene.transform
        assert (classes.width, classes.height) == (256, 256)
        assert classes.overviews(1) or max(classes.width, classes.height) <= 512
    polygons = gpd.read_file(files["polygons (GeoPackage)"])
    assert len(polygons) > 0 and polygons.crs.to_epsg() == 32631
    assert set(polygons["class_name"]) <= set(synthetic.CLASS_NAMES)
    assert files["preview (PNG)"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert load_checkpoint(files["GLNet checkpoint (G->L)"]).config.stage.value == \
        "global-to-local"


def test_demo_scores_three_rows_and_writes_them(demo):
    assert list(demo.scores) == [row for row, _, _ in ROWS]
    document = json.loads(demo.files["evaluation (JSON)"].read_text())
    assert list(document["scores"]) == list(demo.scores)
    for row, score in demo.scores.items():
        assert document["scores"][row]["miou"] == pytest.approx(score.miou)
        assert score.confusion.sum() == 256 * 256  # every pixel of the sample scored once
    table = demo.table().splitlines()
    assert table[0].split()[:2] == ["model", "mIoU"] and len(table) == 1 + len(ROWS)


def test_glnet_row_scores_the_predicted_raster(demo):
    again = score_classes(demo.files["class raster (COG)"], demo.files["sample labels (truth)"],
                          list(synthetic.CLASS_NAMES))
    np.testing.assert_array_equal(again.confusion, demo.scores["GLNet (G->L)"].confusion)


def test_sample_scene_is_the_same_every_time(tmp_path):
    for name in ("a", "b"):
        write_sample_scene(tmp_path / f"{name}.tif", tmp_path / f"{name}-labels.tif", size=160)
    with rasterio.open(tmp_path / "a.tif") as a, rasterio.open(tmp_path / "b.tif") as b:
        np.testing.assert_array_equal(a.read(), b.read())
        assert a.crs.is_projected


def test_demo_refuses_a_used_folder_without_overwrite(demo):
    with pytest.raises(OutputExistsError, match="--overwrite"):
        run_demo(demo.output, TINY, echo=lambda line: None)


def test_demo_refuses_a_sample_smaller_than_a_scene(tmp_path):
    with pytest.raises(InputError, match="at least 128"):
        run_demo(tmp_path / "out", DemoSettings(sample_size=64), echo=lambda line: None)
