import json

import numpy as np
import pyogrio
import pytest
import rasterio
from click.testing import CliRunner
from gdal_api import categories
from rio_cogeo.cogeo import cog_validate

import glnet_geo.inference
from glnet_geo.cli import main


def run(*args):
    return CliRunner().invoke(main, ["predict", *map(str, args)])


def assert_one_line_error(result, *words):
    assert result.exit_code != 0
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith("Error:")
    for word in words:
        assert word in lines[0], lines[0]


def nothing_left(directory, *names):
    """No output under its final name and no temporary file next to it."""
    present = {p.name for p in directory.iterdir()}
    return not (present & set(names)) and not any(n.startswith((".", "tmp")) for n in present)


def test_predict_writes_classes_probabilities_preview_and_polygons(make_checkpoint, make_raster,
                                                                   tmp_path):
    raster = make_raster(height=90, width=110, nodata=0)
    out = tmp_path / "out"
    out.mkdir()
    result = run(make_checkpoint(), raster, "-o", out / "classes.tif", "--probabilities",
                 out / "probs.tif", "--preview", out / "preview.png", "--polygons",
                 out / "classes.gpkg", "--stac", out / "classes.json", "--no-progress")
    assert result.exit_code == 0, result.output
    assert "classes.tif" in result.output and "classes.json" in result.output
    assert sorted(p.name for p in out.iterdir()) == [
        "classes.gpkg", "classes.json", "classes.qml", "classes.tif", "classes.tif.aux.xml",
        "preview.png", "probs.tif"]
    assert set(json.loads((out / "classes.json").read_text())["assets"]) == {
        "classes", "classes_style", "probabilities", "polygons", "preview"}
    assert cog_validate(out / "classes.tif", quiet=True)[0]
    assert cog_validate(out / "probs.tif", quiet=True)[0]
    with rasterio.open(out / "classes.tif") as src:
        classes = src.read(1)
    assert categories(out / "classes.tif")[0] == ["water", "forest", "urban"]
    with rasterio.open(out / "probs.tif") as src:
        assert src.descriptions == ("water", "forest", "urban")
        assert src.scales == (1 / 255,) * 3
    styles = pyogrio.read_dataframe(out / "classes.gpkg", layer="layer_styles")
    assert styles.f_table_name.tolist() == ["classes"] and styles.useAsDefault.all()
    assert 'attr="class_name"' in styles.styleQML.iloc[0]
    import geopandas as gpd

    polygons = gpd.read_file(out / "classes.gpkg", layer="classes")
    assert set(polygons["class_name"]) <= {"water", "forest", "urban"}
    assert set(polygons["class_id"]) == set(np.unique(classes[classes != 255]).tolist())
    assert "confidence" in polygons.columns


def test_several_inputs_go_to_a_directory(make_checkpoint, make_raster, tmp_path):
    a = make_raster("north.tif", 40, 50, seed=1)
    b = make_raster("south.tif", 50, 40, seed=2)
    result = run(make_checkpoint(), a, b, "-o", tmp_path / "classes", "--mode", "global")
    assert result.exit_code == 0, result.output
    rasters = sorted(p.name for p in (tmp_path / "classes").iterdir() if p.suffix == ".tif")
    assert rasters == ["north.tif", "south.tif"]


def test_bands_option_picks_bands_of_a_four_band_raster(make_checkpoint, make_raster, tmp_path):
    raster = make_raster(count=4, height=50, width=60)
    result = run(make_checkpoint(), raster, "-o", tmp_path / "a.tif", "--mode", "global")
    assert_one_line_error(result, "4 data band(s)", "expects 3", "--bands")
    result = run(make_checkpoint(), raster, "-o", tmp_path / "a.tif", "--mode", "global",
                 "--bands", "3,2,1")
    assert result.exit_code == 0, result.output
    with rasterio.open(tmp_path / "a.tif") as dst:
        assert json.loads(dst.tags(1)["class_names"]) == ["water", "forest", "urban"]


def test_missing_input(make_checkpoint, tmp_path):
    result = run(make_checkpoint(), tmp_path / "nope.tif", "-o", tmp_path / "out.tif")
    assert_one_line_error(result, "nope.tif", "does not exist")
    assert nothing_left(tmp_path, "out.tif")


def test_input_that_is_not_a_raster(make_checkpoint, tmp_path):
    notes = tmp_path / "notes.tif"
    notes.write_text("hello")
    result = run(make_checkpoint(), notes, "-o", tmp_path / "out.tif")
    assert_one_line_error(result, "notes.tif", "not a raster")
    assert nothing_left(tmp_path, "out.tif")


def test_band_count_that_does_not_match(make_checkpoint, make_raster, tmp_path):
    raster = make_raster(count=1, dtype="uint16")
    result = run(make_checkpoint(), raster, "-o", tmp_path / "out.tif")
    assert_one_line_error(result, "1 data band(s)", "expects 3", "a checkpoint trained on 1")
    assert "--bands" not in result.output  # no band choice can give 3 bands out of 1
    assert nothing_left(tmp_path, "out.tif")


def test_existing_output_needs_overwrite(make_checkpoint, make_raster, tmp_path):
    raster = make_raster(height=40, width=40)
    out = tmp_path / "out.tif"
    out.write_bytes(b"keep me")
    result = run(make_checkpoint(), raster, "-o", out)
    assert_one_line_error(result, "out.tif", "--overwrite")
    assert out.read_bytes() == b"keep me"
    result = run(make_checkpoint(), raster, "-o", out, "--overwrite", "--mode", "global")
    assert result.exit_code == 0, result.output
    with rasterio.open(out) as src:
        assert src.shape == (40, 40)


def test_unwritable_output_directory(make_checkpoint, make_raster, tmp_path):
    raster = make_raster(height=40, width=40)
    blocker = tmp_path / "file"
    blocker.write_text("a file, not a directory")
    result = run(make_checkpoint(), raster, "-o", blocker / "out.tif")
    assert_one_line_error(result, "directory", "does not exist")


def test_checkpoint_that_is_not_one(make_raster, tmp_path):
    fake = tmp_path / "model.pt"
    fake.write_bytes(b"\x00" * 100)
    result = run(fake, make_raster(), "-o", tmp_path / "out.tif")
    assert_one_line_error(result, "model.pt", "not a checkpoint")
    assert nothing_left(tmp_path, "out.tif")


def test_interrupt_leaves_no_half_written_file(make_checkpoint, make_raster, tmp_path,
                                               monkeypatch):
    raster = make_raster(height=200, width=200)
    real = glnet_geo.inference.predict_scene
    calls = []

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(glnet_geo.inference, "predict_scene", interrupted)
    out = tmp_path / "out"
    out.mkdir()
    result = run(make_checkpoint(), raster, "-o", out / "classes.tif", "--probabilities",
                 out / "probs.tif", "--mode", "global", "--scene-size", "100")
    assert result.exit_code == 130
    assert_one_line_error(result, "interrupted")
    assert len(calls) == 2
    assert list(out.iterdir()) == []


@pytest.mark.parametrize("option", [["--mode", "patch"], ["--batch-size", "0"],
                                    ["--skip-threshold", "0"], ["--skip-threshold", "1.5"]])
def test_bad_options_are_usage_errors(make_checkpoint, make_raster, tmp_path, option):
    result = run(make_checkpoint(), make_raster(), "-o", tmp_path / "o.tif", *option)
    assert result.exit_code == 2
    assert not (tmp_path / "o.tif").exists()


def test_bad_device(make_checkpoint, make_raster, tmp_path):
    result = run(make_checkpoint(), make_raster(), "-o", tmp_path / "o.tif", "--device", "tpu")
    assert_one_line_error(result, "tpu", "--device")


def test_help_has_an_example():
    result = CliRunner().invoke(main, ["predict", "--help"])
    assert result.exit_code == 0
    assert "glnet-geo predict model.pt" in result.output


def test_a_quoted_glob_is_expanded(make_checkpoint, make_raster, tmp_path):
    for name in ("a.tif", "b.tif", "c.png"):
        make_raster(name, 40, 50)
    out = tmp_path / "out"
    result = run(make_checkpoint(), tmp_path / "*.tif", "-o", out, "--mode", "global",
                 "--no-progress")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir() if p.suffix == ".tif") == ["a.tif", "b.tif"]


def test_a_glob_that_matches_nothing(make_checkpoint, tmp_path):
    result = run(make_checkpoint(), tmp_path / "*.tif", "-o", tmp_path / "out")
    assert_one_line_error(result, str(tmp_path / "*.tif"), "pattern")


def test_threads_per_worker_reaches_the_cluster(make_checkpoint, make_raster, tmp_path,
                                                monkeypatch):
    import glnet_geo.distributed

    seen = []
    monkeypatch.setattr(glnet_geo.distributed, "predict_in_parts",
                        lambda *args, cluster, **kw: seen.append(cluster) or [])
    result = run(make_checkpoint(), make_raster("a.tif"), make_raster("b.tif"), "-o",
                 tmp_path / "out", "--workers", "2", "--threads-per-worker", "3")
    assert result.exit_code == 0, result.output
    assert seen[0].workers == 2 and seen[0].torch_threads == 3


def test_threads_per_worker_needs_dask(make_checkpoint, make_raster, tmp_path):
    result = run(make_checkpoint(), make_raster(), "-o", tmp_path / "o.tif",
                 "--threads-per-worker", "2")
    assert_one_line_error(result, "--threads-per-worker 2", "--workers")


def test_creation_options_reach_the_class_cog_and_bidx_picks_bands(make_checkpoint, make_raster,
                                                                   tmp_path):
    raster = make_raster(count=4, height=50, width=60)
    out = tmp_path / "a.tif"
    result = run(make_checkpoint(), raster, "-o", out, "--mode", "global", "--bidx", "3,2,1",
                 "--co", "COMPRESS=LZW", "--co", "blocksize=256", "--no-progress")
    assert result.exit_code == 0, result.output
    assert cog_validate(out, quiet=True)[0]
    with rasterio.open(out) as dst:
        assert dst.compression.name == "lzw" and dst.block_shapes[0] == (256, 256)
    short = run(make_checkpoint(), raster, "-o", tmp_path / "b.tif", "--mode", "global",
                "-b", "3,2,1", "--no-progress")
    assert short.exit_code == 0, short.output
    with rasterio.open(out) as a, rasterio.open(tmp_path / "b.tif") as b:
        assert np.array_equal(a.read(1), b.read(1))


@pytest.mark.parametrize(("option", "words"), [
    ("FOO=1", ["--co FOO=1", "does not support creation option FOO", "gdal.org"]),
    ("COMPRESS=ZZZ", ["--co COMPRESS=ZZZ", "unexpected value", "COMPRESS"]),
    ("COMPRESS", ["--co 'COMPRESS' is not NAME=VALUE", "--co COMPRESS=ZSTD"]),
])
def test_bad_creation_options_are_one_line_before_any_work(make_checkpoint, make_raster,
                                                          tmp_path, option, words):
    raster = make_raster(height=50, width=60)
    result = run(make_checkpoint(), raster, "-o", tmp_path / "a.tif", "--co", option)
    assert_one_line_error(result, *words)
    assert nothing_left(tmp_path, "a.tif")
