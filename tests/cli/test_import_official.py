from __future__ import annotations

import pytest
import torch
from click.testing import CliRunner

from glnet_geo.cli import main
from glnet_geo.models import GLNet
from glnet_geo.models.official import official_names


@pytest.fixture(scope="module")
def official_files(tmp_path_factory):
    """A stage-3 and a stage-1 file in the official format (keys of the official network)."""
    folder = tmp_path_factory.mktemp("official")
    paths = []
    for seed, name in ((0, "local2global.pth"), (1, "global.pth")):
        torch.manual_seed(seed)
        model = GLNet(7, "resnet50")
        ours = model.state_dict()
        state = {f"module.{official}": ours[key]
                 for official, key in official_names(model).items()}
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

    again = runner.invoke(main, ["import-official", str(stage3), "-o", str(out), "--classes",
                                 "deepglobe"])
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
