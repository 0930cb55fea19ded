from __future__ import annotations

import builtins
import pickle

import pytest
import torch

from glnet_geo.checkpoint import (
    FORMAT,
    FORMAT_VERSION,
    ModelConfig,
    load_checkpoint,
    read_checkpoint,
    save_checkpoint,
)
from glnet_geo.errors import CheckpointError, OutputExistsError
from glnet_geo.io.grid import boxes_from_windows, patch_windows
from glnet_geo.models import GLNet
from glnet_geo.models.stages import Stage


def _config(stage=Stage.GLOBAL_TO_LOCAL, bands=(1, 2, 3, 4)):
    return ModelConfig(class_names=["a", "b", "c"], backbone="resnet18", bands=list(bands),
                       normalization={"scale": 255.0, "mean": [0.1] * len(bands),
                                      "std": [0.2] * len(bands)},
                       global_size=32, patch_size=32, min_overlap=8, scene_size=60,
                       stage=stage)


def _scene(bands=4):
    gen = torch.Generator().manual_seed(0)
    windows = patch_windows(50, 60, 32, 8)
    return (torch.rand(1, bands, 32, 32, generator=gen),
            torch.rand(len(windows), bands, 32, 32, generator=gen),
            boxes_from_windows(windows, 50, 60))


@pytest.mark.parametrize("stage", [Stage.GLOBAL_TO_LOCAL, Stage.LOCAL_TO_GLOBAL],
                         ids=lambda s: s.value)
def test_round_trip_gives_the_same_outputs(tmp_path, stage):
    config = _config(stage)
    torch.manual_seed(0)
    model = config.build_model().eval()
    assert (model.fixed_global_branch is not None) == (stage is Stage.LOCAL_TO_GLOBAL)
    path = save_checkpoint(tmp_path / "model.pt", model, config)
    loaded = load_checkpoint(path)
    assert loaded.config == config
    assert not loaded.model.training
    inputs = _scene()
    with torch.no_grad():
        expected = model(*inputs, mode=stage.mode).logits
        got = loaded.model(*inputs, mode=stage.mode).logits
    torch.testing.assert_close(got, expected, rtol=0, atol=0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pt"]  # no temp file left


def test_existing_output_needs_overwrite(tmp_path):
    config = _config()
    model = GLNet(3, "resnet18", in_channels=4)
    path = save_checkpoint(tmp_path / "model.pt", model, config)
    with pytest.raises(OutputExistsError, match="overwrite"):
        save_checkpoint(path, model, config)
    save_checkpoint(path, model, config, overwrite=True)


class _WritesAFile:
    """Unpickling this object writes a file: what a malicious checkpoint would do."""

    def __init__(self, target):
        self.target = str(target)

    def __reduce__(self):
        return (builtins.exec, (f"open({self.target!r}, 'w').write('pwned')",))


def test_a_checkpoint_carrying_code_is_refused_without_running_it(tmp_path):
    proof = tmp_path / "proof.txt"
    pickle.loads(pickle.dumps(_WritesAFile(proof)))  # the payload does run when unpickled
    assert proof.exists()

    marker = tmp_path / "marker.txt"
    path = tmp_path / "evil.pt"
    torch.save({"format": FORMAT, "format_version": FORMAT_VERSION,
                "config": _config().to_dict(), "state_dict": {}, "x": _WritesAFile(marker)},
               path)
    with pytest.raises(CheckpointError, match="refused to unpickle: it would call exec"):
        load_checkpoint(path)
    assert not marker.exists()


def _payload(**changes):
    model = GLNet(3, "resnet18", in_channels=4)
    payload = {"format": FORMAT, "format_version": FORMAT_VERSION,
               "config": _config().to_dict(), "state_dict": model.state_dict()}
    payload.update(changes)
    return payload


def test_wrong_format_version_is_refused(tmp_path):
    path = tmp_path / "future.pt"
    torch.save(_payload(format_version=FORMAT_VERSION + 1), path)
    with pytest.raises(CheckpointError, match=f"format version {FORMAT_VERSION + 1}"):
        read_checkpoint(path)


def test_missing_keys_are_refused(tmp_path):
    payload = _payload()
    del payload["state_dict"]["aggregation.conv.weight"]
    path = tmp_path / "incomplete.pt"
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match=r"missing keys \['aggregation.conv.weight'\]"):
        load_checkpoint(path)


def test_foreign_and_missing_files_are_refused(tmp_path):
    official = tmp_path / "official.pth"
    torch.save({"resnet_global.conv1.weight": torch.zeros(1)}, official)
    with pytest.raises(CheckpointError, match="import-official"):
        load_checkpoint(official)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"\x00" * 64)
    with pytest.raises(CheckpointError, match="is not a checkpoint"):
        load_checkpoint(junk)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "absent.pt")
