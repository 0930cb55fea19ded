import json
import signal

import numpy as np
import pyogrio
import pytest
import rasterio
from click.testing import CliRunner
from gdal_api import categories
from rio_cogeo.cogeo import cog_validate

from glnet_geo.cli import main
from glnet_geo.predict import driver


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
    real = driver.predict_scenes
    calls = []

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(driver, "predict_scenes", interrupted)
    out = tmp_path / "out"
    out.mkdir()
    result = run(make_checkpoint(), raster, "-o", out / "classes.tif", "--probabilities",
                 out / "probs.tif", "--mode", "global", "--scene-size", "100")
    assert result.exit_code == 130
    assert_one_line_error(result, "predict stopped by Ctrl-C", "no temporary file")
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
    seen = []
    monkeypatch.setattr(driver, "predict_in_parts",
                        lambda checkpoint, sources, plans, options, cluster: seen.append(cluster)
                        or [])
    result = run(make_checkpoint(), make_raster("a.tif"), make_raster("b.tif"), "-o",
                 tmp_path / "out", "--workers", "2", "--threads-per-worker", "3")
    assert result.exit_code == 0, result.output
    assert seen[0].workers == 2 and seen[0].torch_threads == 3


def test_threads_per_worker_needs_dask(make_checkpoint, make_raster, tmp_path):
    result = run(make_checkpoint(), make_raster(), "-o", tmp_path / "o.tif",
                 "--threads-per-worker", "2")
    assert_one_line_error(result, "--threads-per-worker 2", "--workers")


@pytest.mark.parametrize(("precision", "words"), [
    ("fp16", ["--precision fp16", "only on CUDA", "supports fp32", "--precision auto"]),
    ("fp64", ["--precision", "'fp64'", "auto"]),
])
def test_a_precision_this_machine_cannot_run_is_one_line(make_checkpoint, make_raster, tmp_path,
                                                         precision, words):
    out = tmp_path / "out"
    out.mkdir()
    result = run(make_checkpoint(), make_raster(), "-o", out / "classes.tif", "--precision",
                 precision)
    assert_one_line_error(result, *words)
    assert not any(out.iterdir())


def test_the_summary_names_the_precision(make_checkpoint, make_raster, tmp_path):
    result = run(make_checkpoint(), make_raster(), "-o", tmp_path / "classes.tif",
                 "--precision", "fp32", "--no-progress")
    assert result.exit_code == 0, result.output
    assert "1 scene(s) in fp32 ->" in result.output
    with rasterio.open(tmp_path / "classes.tif") as src:
        assert src.tags()["precision"] == "fp32"


@pytest.mark.parametrize("kind", ["truncated", "corrupt", "vrt"])
def test_a_damaged_raster_is_one_line_and_publishes_nothing(make_checkpoint, damaged_raster,
                                                            tmp_path, kind):
    raster = damaged_raster(kind)
    out = tmp_path / "out"
    out.mkdir()
    result = run(make_checkpoint(), raster, "-o", out / "classes.tif", "--probabilities",
                 out / "probs.tif", "--polygons", out / "classes.gpkg", "--no-progress")
    assert result.exit_code == 1
    assert_one_line_error(result, raster.name, "cannot be read at window", "GDAL says")
    assert list(out.iterdir()) == []


def refuse_to_load(monkeypatch):
    """Fail the test if predict gets as far as loading the model."""
    def load(*args, **kwargs):
        raise AssertionError("the model was loaded before the check")

    monkeypatch.setattr(driver, "prepare_checkpoint", load)


@pytest.mark.parametrize(("option", "name", "words"), [
    ("-o", "classes.png", ["suffix '.png'", "name it", "classes.tif", "--preview"]),
    ("-o", "classes", ["no suffix", "classes.tif"]),
    ("--probabilities", "probs.jpg", ["probabilities raster", "probs.tif"]),
    ("--preview", "preview.jpg", ["is a PNG", "preview.png"]),
    ("--polygons", "classes.kml", ["polygon format", "name the file", ".gpkg"]),
])
def test_a_misleading_output_name_is_refused_before_the_model_runs(
        make_checkpoint, make_raster, tmp_path, monkeypatch, option, name, words):
    refuse_to_load(monkeypatch)
    outputs = {"-o": tmp_path / "classes.tif", option: tmp_path / name}
    args = [a for pair in outputs.items() for a in pair]
    result = run(make_checkpoint(), make_raster(), *args)
    assert_one_line_error(result, *words)
    assert nothing_left(tmp_path, name, "classes.tif")


def test_polygons_of_a_raster_without_crs_are_refused_before_the_model_runs(
        make_checkpoint, make_raster, tmp_path, monkeypatch):
    refuse_to_load(monkeypatch)
    raster = make_raster(crs=None)
    result = run(make_checkpoint(), raster, "-o", tmp_path / "c.tif", "--polygons",
                 tmp_path / "c.gpkg")
    assert_one_line_error(result, "scene.tif has no CRS", "--polygons", "rio edit-info")


def warning_lines(caplog):
    return [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]


def test_a_raster_without_crs_predicts_with_one_warning_line(make_checkpoint, make_raster,
                                                             tmp_path, caplog):
    raster = make_raster(crs=None, height=40, width=40)
    with rasterio.open(raster) as src:
        transform = src.transform
    result = run(make_checkpoint(), raster, "-o", tmp_path / "c.tif", "--mode", "global",
                 "--no-progress")
    assert result.exit_code == 0, result.output
    lines = warning_lines(caplog)
    assert len(lines) == 1 and "scene.tif has no CRS" in lines[0], lines
    with rasterio.open(tmp_path / "c.tif") as src:
        assert src.crs is None and src.transform == transform


def test_a_raster_without_any_georeferencing_warns_once_and_nothing_raw(make_checkpoint,
                                                                        tmp_path, caplog):
    import warnings

    plain = tmp_path / "photo.tif"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with rasterio.open(plain, "w", driver="GTiff", width=40, height=40, count=3,
                           dtype="uint8") as dst:
            dst.write(np.full((3, 40, 40), 100, np.uint8))
    with warnings.catch_warnings(record=True) as raw:
        warnings.simplefilter("always")
        result = run(make_checkpoint(), plain, "-o", tmp_path / "c.tif", "--mode", "global",
                     "--preview", tmp_path / "p.png", "--no-progress")
    assert result.exit_code == 0, result.output
    assert raw == []  # rasterio's NotGeoreferencedWarning does not reach the user raw
    lines = warning_lines(caplog)
    assert len(lines) == 1 and "photo.tif is not georeferenced" in lines[0], lines


@pytest.mark.parametrize("located_by", ["gcps", "rpcs"])
def test_a_raster_located_by_gcps_or_rpcs_is_refused_with_warp_it_first(
        make_checkpoint, tmp_path, monkeypatch, located_by):
    from rasterio.control import GroundControlPoint
    from rasterio.rpc import RPC

    refuse_to_load(monkeypatch)
    if located_by == "gcps":
        extra = {"gcps": [GroundControlPoint(r, c, 500000 + 2 * c, 4500000 - 2 * r)
                          for r, c in ((0, 0), (0, 40), (40, 0), (40, 40))],
                 "crs": "EPSG:32631"}
    else:
        coefficients = [0.0] * 20
        extra = {"rpcs": RPC(height_off=0, height_scale=1, lat_off=45, lat_scale=0.01,
                             line_den_coeff=[1.0, *coefficients[1:]], line_num_coeff=coefficients,
                             line_off=20, line_scale=20, long_off=3, long_scale=0.01,
                             samp_den_coeff=[1.0, *coefficients[1:]], samp_num_coeff=coefficients,
                             samp_off=20, samp_scale=20)}
    raster = tmp_path / "located.tif"
    with rasterio.open(raster, "w", driver="GTiff", width=40, height=40, count=3,
                       dtype="uint8", **extra) as dst:
        dst.write(np.full((3, 40, 40), 100, np.uint8))
    result = run(make_checkpoint(), raster, "-o", tmp_path / "c.tif")
    words = {"gcps": ["4 ground control points", "gdalwarp"],
             "rpcs": ["(RPCs)", "gdalwarp -rpc"]}[located_by]
    assert_one_line_error(result, "located.tif", "warp it", *words)
    assert nothing_left(tmp_path, "c.tif")


@pytest.mark.skipif(not hasattr(signal, "SIGXFSZ"), reason="POSIX file size limit")
def test_a_full_file_system_is_one_line_removes_the_temporaries_and_keeps_the_output(
        make_checkpoint, make_raster, tmp_path, run_glnet):
    raster = make_raster("noise.tif", 480, 480)
    out = tmp_path / "out"
    out.mkdir()
    (out / "classes.tif").write_bytes(b"an earlier result")
    done = run_glnet("predict", make_checkpoint(), raster, "-o", out / "classes.tif",
                     "--probabilities", out / "probs.tif", "--mode", "global", "--overwrite",
                     "--no-progress", file_size_limit=64 * 1024)
    assert done.returncode == 1, done.stderr
    lines = done.stderr.strip().splitlines()
    ours = [line for line in lines if line.startswith("Error:")]
    assert ours == lines, lines  # nothing raw: not libtiff's "_tiffWriteProc: ..." either
    assert f"in {out}: the file system refused it" in ours[0]
    assert "no existing output was touched" in ours[0]
    assert sorted(p.name for p in out.iterdir()) == ["classes.tif"]
    assert (out / "classes.tif").read_bytes() == b"an earlier result"


def test_two_runs_on_one_output_leave_one_whole_cog(make_checkpoint, make_raster, tmp_path):
    import os
    import subprocess
    import sys

    raster = make_raster("wide.tif", 800, 800)
    out = tmp_path / "out"
    out.mkdir()
    code = "from glnet_geo.cli import main; main(prog_name='glnet-geo')"
    runs = [subprocess.Popen(
        [sys.executable, "-c", code, "predict", str(make_checkpoint()), str(raster), "-o",
         str(out / "classes.tif"), "--mode", "global", "--no-progress"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"}) for _ in range(2)]
    ended = [(r.wait(timeout=300), r.communicate()[1].strip().splitlines()) for r in runs]
    assert sorted(code for code, _ in ended) == [0, 1], ended
    (refused,) = [lines for code, lines in ended if code == 1]
    assert len(refused) == 1, refused  # refused at the start, or at the end when it appeared
    assert "already exists" in refused[0] or "appeared while this run" in refused[0], refused
    assert sorted(p.name for p in out.iterdir()) == [
        "classes.qml", "classes.tif", "classes.tif.aux.xml"]
    assert cog_validate(out / "classes.tif", quiet=True)[0]


def test_an_input_unlike_the_training_imagery_gets_one_warning(make_checkpoint, make_raster,
                                                               tmp_path, caplog):
    from glnet_geo.imagery import ImageryProfile

    checkpoint = make_checkpoint(imagery=ImageryProfile(dtype="uint8", pixel_size=0.5))
    result = run(checkpoint, make_raster(dtype="uint16"), "-o", tmp_path / "c.tif",
                 "--mode", "global")
    assert result.exit_code == 0, result.output
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1, warnings
    assert "is uint16 but the model was trained on uint8" in warnings[0]
    assert "the model was trained at 0.5 m" in warnings[0]


def test_nodata_masks_an_untagged_collar(make_checkpoint, make_raster, tmp_path):
    raster = make_raster(height=60, width=70)
    with rasterio.open(raster, "r+") as dst:
        data = dst.read()
        data[:, :, :10] = 0  # a black collar the file does not tag
        data[:, :, 10:] = np.maximum(data[:, :, 10:], 1)
        dst.write(data)
    for args, masked in (([], False), (["--nodata", "0"], True)):
        out = tmp_path / f"c{len(args)}.tif"
        result = run(make_checkpoint(), raster, "-o", out, "--mode", "global", *args)
        assert result.exit_code == 0, result.output
        with rasterio.open(out) as src:
            classes = src.read(1)
        assert (classes[:, :10] == 255).all() == masked
        assert (classes[:, 10:] != 255).all()


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
