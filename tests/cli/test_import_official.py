from __future__ import annotations

import numpy as np
import pytest
import rasterio
import torch
from click.testing import CliRunner
from official_factory import official_state_dict

from glnet_geo.cli import main


@pytest.fixture(scope="module")
def official_files(tmp_path_factory):
    """A stage-3 and its stage-1 file in the official layout (DataParallel-prefixed keys)."""
    folder = tmp_path_factory.mktemp("official")
    paths = []
    for stage, name in ((3, "local2global.pth"), (1, "global.pth")):
        state = {f"module.{k}": v for k, v in official_state_dict(seed=0, stage=stage).items()}
        torch.save(state, folder / name)
        paths.append(folder / name)
    return paths


def test_import_then_info(tmp_path, official_files):
    stage3, stage1 = official_files
    out = tmp_path / "l2g.pt"
    runner = CliRunner()
    result = runner.invoke(main, ["import-official", str(stage3), "-o", str(out), "--classes",
                                  "deepglobe", "--global-fixed", str(stage1)])
    assert result.exit_code == 0, result.output
    assert out.exists()
    info = runner.invoke(main, ["info", str(out)])
    assert info.exit_code == 0, info.output
    assert "local-to-global" in info.output and "bidirectional" in info.output
    assert "resnet50" in info.output and "0=urban_land" in info.output
    assert "6=unknown" in info.output and "scale=255.0" in info.output
    assert "uint8, 0.5 m pixels" in info.output  # DeepGlobe's imagery

    again = runner.invoke(main, ["import-official", str(stage3), "-o", str(out), "--classes",
                                 "deepglobe", "--global-fixed", str(stage1)])
    assert again.exit_code == 1
    assert "already exists; pass --overwrite" in again.output


def test_bad_inputs_exit_with_one_line(tmp_path):
    runner = CliRunner()
    result = runner.invoke(main, ["import-official", str(tmp_path / "absent.pth"), "-o",
                                  str(tmp_path / "x.pt"), "--classes", "inria"])
    assert result.exit_code == 1
    assert result.output.count("\n") == 1 and "does not exist" in result.output
    plain = tmp_path / "plain.pth"
    torch.save({"resnet_global.conv1.weight": torch.zeros(64, 3, 7, 7),
                "decoder.weight": torch.zeros(1)}, plain)
    result = runner.invoke(main, ["import-official", str(plain), "-o", str(tmp_path / "x.pt"),
                                  "--classes", "deepglobe"])
    assert result.exit_code == 1 and "unexpected key 'decoder.weight'" in result.output
    assert not (tmp_path / "x.pt").exists()


def test_stage_three_needs_its_stage_one_file(tmp_path, official_files):
    stage3, stage1 = official_files
    out = tmp_path / "x.pt"
    runner = CliRunner()
    result = runner.invoke(main, ["import-official", str(stage3), "-o", str(out), "--classes",
                                  "deepglobe"])
    assert result.exit_code == 1 and result.output.count("\n") == 1
    assert f"{stage3} is a stage-3 (local2global) file" in result.output
    assert "--global-fixed fpn_deepglobe_global.pth" in result.output
    result = runner.invoke(main, ["import-official", str(stage1), "-o", str(out), "--classes",
                                  "deepglobe", "--global-fixed", str(stage1)])
    assert result.exit_code == 1 and result.output.count("\n") == 1
    assert "is a stage-1 (global) file; drop --global-fixed" in result.output
    assert not out.exists()


def test_global_mode_of_stage_three_is_the_stage_one_network(tmp_path, official_files,
                                                            make_raster):
    """--mode global on the G<->L import predicts what the stage-1 import predicts."""
    stage3, stage1 = official_files
    runner = CliRunner()
    imported = {}
    for name, args in (("l2g", [str(stage3), "--global-fixed", str(stage1)]),
                       ("g", [str(stage1)])):
        imported[name] = tmp_path / f"{name}.pt"
        result = runner.invoke(main, ["import-official", *args, "-o", str(imported[name]),
                                      "--classes", "deepglobe"])
        assert result.exit_code == 0, result.output
    raster = make_raster(height=96, width=96)
    classes = {}
    for name, checkpoint in imported.items():
        out = tmp_path / f"{name}.tif"
        result = runner.invoke(main, ["predict", str(checkpoint), str(raster), "-o", str(out),
                                      "--mode", "global", "--device", "cpu"])
        assert result.exit_code == 0, result.output
        with rasterio.open(out) as src:
            classes[name] = src.read(1)
    assert np.array_equal(classes["l2g"], classes["g"])
