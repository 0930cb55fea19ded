"""``glnet-geo train`` on tiny fixtures in the real layouts, then predict and evaluate."""

import json

import numpy as np
import pytest
import rasterio
import torch
from affine import Affine
from click.testing import CliRunner
from PIL import Image

from glnet_geo.checkpoint import load_checkpoint
from glnet_geo.cli import main
from glnet_geo.datasets import synthetic
from glnet_geo.models.stages import Stage

TINY = ["--stage", "all", "--max-steps", "2", "--backbone", "resnet18", "--global-size", "64",
        "--patch-size", "32", "--min-overlap", "0", "--batch-size", "1", "--log-every", "1",
        "--quiet"]


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def last_line_error(result, *words):
    assert result.exit_code != 0
    line = result.output.strip().splitlines()[-1]
    assert line.startswith("Error:"), result.output
    for word in words:
        assert word in line, line


def check_trained(checkpoint, image, tmp_path, *evaluate_args):
    """The checkpoint is at stage 3, predicts a raster and evaluates with --json."""
    loaded = load_checkpoint(checkpoint)
    assert loaded.config.stage is Stage.LOCAL_TO_GLOBAL
    assert loaded.config.backbone == "resnet18" and loaded.config.patch_size == 32
    run_dir = checkpoint.with_name(checkpoint.stem + ".run")
    for stage in (Stage.GLOBAL, Stage.GLOBAL_TO_LOCAL):  # each stage's model, for --init
        assert load_checkpoint(run_dir / f"{stage.value}.pt").config.stage is stage
    assert len(list((run_dir / "logs").glob("*/version_0/metrics.csv"))) == 3
    # TensorBoard's events beside the CSV, in the same folder of each stage
    assert len(list((run_dir / "logs").glob("*/version_0/events.out.tfevents.*"))) == 3
    assert not list((run_dir / "logs").glob("*/version_1"))
    predicted = tmp_path / "pred.tif"
    result = invoke("predict", checkpoint, image, "-o", predicted, "--no-progress")
    assert result.exit_code == 0, result.output
    with rasterio.open(predicted) as out, rasterio.open(image) as src:
        assert out.shape == src.shape and out.crs == src.crs
        assert set(np.unique(out.read(1))) <= set(range(loaded.config.num_classes))
    scores = tmp_path / "scores.json"
    result = invoke("evaluate", checkpoint, *evaluate_args, "--json", scores)
    assert result.exit_code == 0, result.output
    assert "mIoU" in result.output
    report = json.loads(scores.read_text())
    k = loaded.config.num_classes
    assert np.asarray(report["confusion_matrix"]).shape == (k, k)
    assert report["mode"] == "glnet" and 0 <= report["pixel_accuracy"] <= 1
    assert scores.with_suffix(".png").read_bytes()[:4] == b"\x89PNG"
    return report, result.output


def test_train_deepglobe_all_stages(tmp_path):
    root = tmp_path / "deepglobe"
    (image,) = synthetic.write_deepglobe_layout(root, count=1, size=64, seed=0)
    synthetic.write_deepglobe_layout(root, count=1, size=64, seed=5, folder="test_data")
    out = tmp_path / "dg.pt"
    result = invoke("train", "deepglobe", "--root", root, "-o", out, *TINY)
    assert result.exit_code == 0, result.output
    tif = tmp_path / "scene.tif"  # predict reads GeoTIFFs: the JPEG as an RGB GeoTIFF
    pixels = np.asarray(Image.open(image)).transpose(2, 0, 1)
    with rasterio.open(tif, "w", driver="GTiff", width=64, height=64, count=3, dtype="uint8",
                       crs="EPSG:32631", transform=Affine(0.5, 0, 0, 0, -0.5, 0)) as dst:
        dst.write(pixels)
    imagery = load_checkpoint(out).config.imagery  # DeepGlobe's JPEGs: 8-bit, 0.5 m
    assert imagery.dtype == "uint8" and imagery.pixel_size == 0.5 and len(imagery.low) == 3
    report, _ = check_trained(out, tif, tmp_path, "deepglobe", "--root", root)
    assert report["iou"]["unknown"] is None  # the ignored class is not scored


def test_train_inria_all_stages(tmp_path):
    images = synthetic.write_inria_layout(tmp_path / "inria", cities=("austin",),
                                          tiles_per_city=6, size=64)
    for image in images[:4]:  # keep austin5 (validation) and austin6 (training)
        image.unlink()
        (image.parent.parent / "gt" / image.name).unlink()
    image = images[4]
    out = tmp_path / "inria.pt"
    result = invoke("train", "inria", "--root", tmp_path / "inria", "-o", out, *TINY)
    assert result.exit_code == 0, result.output
    report, output = check_trained(out, image, tmp_path, "inria", "--root",
                                   tmp_path / "inria", "--split", "val")
    assert "building IoU" in output and "building_iou" in report


@pytest.mark.parametrize("labels", ["raster", "vector"])
def test_train_custom_all_stages(tmp_path, labels):
    files = synthetic.write_custom_dataset(tmp_path / "tiles", count=2, size=64, seed=3)
    if labels == "raster":
        label_args = ["--labels", files.labels[0].parent, "--classes", files.classes]
    else:
        label_args = ["--labels", files.vector, "--label-field", "class"]
    images = ["--images", str(files.images[0].parent / "*.tif")]
    out = tmp_path / "custom.pt"
    result = invoke("train", "custom", *images, *label_args, "--scene-size", "64", "-o", out,
                    *TINY)
    assert result.exit_code == 0, result.output
    with rasterio.open(files.images[0]) as src:  # the pixel size comes from the transform
        assert load_checkpoint(out).config.imagery.pixel_size == pytest.approx(abs(src.res[0]))
    check_trained(out, files.images[0], tmp_path, "custom", *images, *label_args)


def test_chips_smaller_than_a_scene_train_whole_with_default_options(tmp_path, caplog):
    """SpaceNet-like chips (900 px there, 96 px here) with vector labels, no --scene-size."""
    files = synthetic.write_custom_dataset(tmp_path / "chips", count=2, size=96, seed=4)
    out = tmp_path / "chips.pt"
    sizes = ["--max-steps", "1", "--backbone", "resnet18", "--global-size", "64",
             "--patch-size", "32", "--min-overlap", "8", "--batch-size", "1", "--quiet"]
    result = invoke("train", "custom", "--images", files.images[0].parent, "--labels",
                    files.vector, "--label-field", "class", "-o", out, *sizes)
    assert result.exit_code == 0, result.output
    said = [r.getMessage() for r in caplog.records if "one whole scene" in r.getMessage()]
    assert len(said) == 1
    assert "smallest tile 96 x 96 px" in said[0] and "--scene-size PX overrides" in said[0]
    assert load_checkpoint(out).config.scene_size == 96
    result = invoke("predict", out, files.images[0], "-o", tmp_path / "pred.tif",
                    "--no-progress")
    assert result.exit_code == 0, result.output
    with rasterio.open(tmp_path / "pred.tif") as src:
        assert src.shape == (96, 96)


def test_a_piped_run_talks_in_lines_and_config_repeats_it(tmp_path):
    """Not a terminal (CliRunner): plain lines; run.yaml replays the run to the same weights."""
    import torch
    import yaml

    from glnet_geo.checkpoint import read_checkpoint

    files = synthetic.write_custom_dataset(tmp_path / "tiles", count=2, size=64, seed=3)
    out = tmp_path / "first.pt"
    args = ["--images", files.images[0].parent, "--labels", files.vector, "--label-field",
            "class", "--scene-size", "64", "--stage", "global", "--max-steps", "4",
            "--log-every", "2", "--backbone", "resnet18", "--global-size", "64",
            "--patch-size", "32", "--min-overlap", "0", "--batch-size", "1", "--seed", "7"]
    result = invoke("train", "custom", *args, "-o", out)
    assert result.exit_code == 0, result.output
    assert "\r" not in result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("== stage 1/1: global -- trains the global branch G")
    steps = [line for line in lines if line.startswith("   global step ")]
    assert [line.split()[2] for line in steps] == ["2/4", "4/4"]
    assert all("loss " in line and "lr " in line and "steps/s" in line for line in steps)
    assert lines[-2].startswith("== stage 1/1: global done: 4 steps in ")
    assert lines[-1] == f"wrote {out}"

    run_file = tmp_path / "first.run" / "run.yaml"
    saved = yaml.safe_load(run_file.read_text())
    assert saved["training"]["seed"] == 7 and saved["training"]["max_steps"] == 4
    assert saved["data"]["label_field"] == "class" and saved["output"] == str(out)
    assert saved["classes"]["names"][0] == "background"
    assert {"glnet-geo", "torch", "lightning", "python"} <= set(saved["versions"])
    assert read_checkpoint(out)["run"] == saved

    again = tmp_path / "again.pt"
    result = invoke("train", "--config", run_file, "-o", again)
    assert result.exit_code == 0, result.output
    replayed = yaml.safe_load((tmp_path / "again.run" / "run.yaml").read_text())
    assert {**replayed, "output": None} == {**saved, "output": None}
    first, second = (read_checkpoint(p)["state_dict"] for p in (out, again))
    assert all(torch.equal(first[k], second[k]) for k in first)

    result = invoke("train", "--config", run_file, "-o", tmp_path / "x.pt", "--epochs", "3")
    last_line_error(result, "--config", "--epochs", "edit the run file")
    result = invoke("train", "--config", tmp_path / "missing.yaml", "-o", tmp_path / "x.pt")
    last_line_error(result, "missing.yaml does not exist")
    result = invoke("train", "-o", tmp_path / "x.pt")
    last_line_error(result, "DATASET", "--config")


def test_bad_roots_name_what_was_expected_and_found(tmp_path):
    (tmp_path / "empty" / "junk").mkdir(parents=True)
    result = invoke("train", "deepglobe", "--root", tmp_path / "empty", "-o", tmp_path / "m.pt")
    last_line_error(result, "data/training_data", "found ['junk']")
    result = invoke("train", "inria", "--root", tmp_path / "empty", "-o", tmp_path / "m.pt")
    last_line_error(result, "AerialImageDataset/train", "found ['junk']")
    result = invoke("train", "custom", "-o", tmp_path / "m.pt")
    last_line_error(result, "--images", "--labels")


def test_bad_custom_labels(tmp_path):
    files = synthetic.write_custom_dataset(tmp_path, count=1, size=64, seed=4)
    common = ["train", "custom", "--images", files.images[0], "-o", tmp_path / "m.pt"]
    result = invoke(*common, "--labels", files.vector, "--label-field", "landuse")
    last_line_error(result, "no attribute 'landuse'", "class")
    shifted = tmp_path / "shifted.tif"
    with rasterio.open(files.labels[0]) as src:
        profile = src.profile | {"transform": src.transform * src.transform.translation(1e4, 0)}
        with rasterio.open(shifted, "w", **profile) as dst:
            dst.write(src.read())
    result = invoke(*common, "--labels", shifted)
    last_line_error(result, "do not overlap the images")


def test_stage_two_alone_needs_a_stage_one_model(tmp_path):
    files = synthetic.write_custom_dataset(tmp_path, count=1, size=64, seed=4)
    result = invoke("train", "custom", "--images", files.images[0], "--labels", files.labels[0],
                    "--stage", "global-to-local", "-o", tmp_path / "m.pt")
    last_line_error(result, "--init CHECKPOINT")


def test_mask_colours_outside_the_palette(tmp_path):
    (image,) = synthetic.write_deepglobe_layout(tmp_path, count=1, size=64)
    mask_path = image.parent.parent / "masks" / image.name.replace("_sat.jpg", "_mask.png")
    mask = np.asarray(Image.open(mask_path)).copy()
    mask[7, 9] = (128, 0, 64)
    Image.fromarray(mask).save(mask_path)
    result = invoke("train", "deepglobe", "--root", tmp_path, "-o", tmp_path / "m.pt", *TINY)
    last_line_error(result, "_mask.png has 1 pixels", "(128, 0, 64)", "row 7, column 9")
    assert not (tmp_path / "m.pt").exists()


def test_coarse_to_fine_training_is_recorded_in_the_checkpoint(tmp_path):
    images = synthetic.write_inria_layout(tmp_path / "inria", cities=("austin",),
                                          tiles_per_city=6, size=64)
    out = tmp_path / "c2f.pt"
    result = invoke("train", "inria", "--root", tmp_path / "inria", "-o", out, *TINY,
                    "--max-steps", "1", "--coarse-to-fine")
    assert result.exit_code == 0, result.output
    assert load_checkpoint(out).config.coarse_to_fine
    run_dir = out.with_name("c2f.run")
    assert not load_checkpoint(run_dir / "global.pt").config.coarse_to_fine
    assert load_checkpoint(run_dir / "global-to-local.pt").config.coarse_to_fine
    result = invoke("predict", out, images[0], "-o", tmp_path / "pred.tif", "--no-progress")
    assert result.exit_code == 0, result.output
    with rasterio.open(tmp_path / "pred.tif") as src:
        assert src.tags()["predict_mode"] == "coarse-to-fine"



def test_a_damaged_image_is_one_line_before_training(tmp_path):
    files = synthetic.write_custom_dataset(tmp_path, count=2, size=64, seed=4)
    data = files.images[0].read_bytes()
    files.images[0].write_bytes(data[: len(data) // 2])
    out = tmp_path / "m.pt"
    result = invoke("train", "custom", "--images", files.images[0].parent, "--labels",
                    files.labels[0].parent, "--classes", files.classes, "--scene-size", "64",
                    "-o", out, *TINY)
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith(f"Error: image {files.images[0]} cannot be read at window")
    assert "GDAL says" in lines[0] and not out.exists()


def test_an_output_that_cannot_be_written_is_refused_before_training(tmp_path):
    files = synthetic.write_custom_dataset(tmp_path, count=1, size=64, seed=4)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    result = invoke("train", "custom", "--images", files.images[0], "--labels",
                    files.labels[0], "--classes", files.classes, "-o", blocker / "m.pt", *TINY)
    last_line_error(result, f"cannot create {blocker}", "writable location")
    assert not list(tmp_path.glob("**/*.run"))


@pytest.mark.parametrize("value", ["120,50", "0", "ten"])
def test_epochs_take_one_count_or_three(tmp_path, value):
    result = invoke("train", "deepglobe", "--root", tmp_path, "-o", tmp_path / "m.pt",
                    "--epochs", value)
    last_line_error(result, f"--epochs '{value}'", "--epochs 120,50,120")
    assert not (tmp_path / "m.pt").exists()


def test_the_official_recipe_options_train_all_stages(tmp_path):
    files = synthetic.write_custom_dataset(tmp_path / "tiles", count=2, size=64, seed=4)
    out = tmp_path / "official-recipe.pt"
    result = invoke("train", "custom", "--images", files.images[0].parent / "*.tif",
                    "--labels", files.vector, "--label-field", "class", "--scene-size", "64",
                    "-o", out, *TINY, "--batch-size", "2", "--checkpoint-every", "1",
                    "--loss-reduction", "sum", "--global-pass", "batch")
    assert result.exit_code == 0, result.output
    assert load_checkpoint(out).config.stage is Stage.LOCAL_TO_GLOBAL
    hparams = torch.load(out.with_name("official-recipe.run") / "local-to-global" /
                         "last.ckpt", weights_only=True)["hyper_parameters"]["losses"]
    assert hparams["reduction"] == "sum" and hparams["global_pass"] == "batch"
