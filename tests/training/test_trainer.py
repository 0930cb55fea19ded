import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from glnet_geo.checkpoint import load_checkpoint
from glnet_geo.datasets import synthetic
from glnet_geo.errors import CheckpointError, InputError, OutputExistsError
from glnet_geo.models.stages import Stage
from glnet_geo.training.data import DataSettings
from glnet_geo.training.settings import StagePlan, TrainSettings
from glnet_geo.training.trainer import read_resume_point, train

TINY = dict(backbone="resnet18", global_size=64, patch_size=32, min_overlap=0, batch_size=2,
            progress=False, log_every=1)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    files = synthetic.write_custom_dataset(tmp_path_factory.mktemp("tiles"), count=2, size=64,
                                           seed=2)
    return DataSettings("custom", images=[str(p) for p in files.images],
                        labels=[str(p) for p in files.labels], classes=str(files.classes),
                        scene_size=64)


def _train_losses(run_dir: Path, stage: str) -> list[tuple[int, float]]:
    rows = []
    for path in sorted((run_dir / "logs" / stage).glob("version_*/metrics.csv")):
        with open(path) as f:
            rows += [(int(r["step"]), float(r["train_loss"])) for r in csv.DictReader(f)
                     if r.get("train_loss")]
    return rows


def test_resume_continues_from_the_saved_step(data, tmp_path):
    out = tmp_path / "m.pt"
    settings = TrainSettings(plan="global", max_steps=1, checkpoint_every=1, **TINY)
    train(data, settings, out)
    last = out.with_name("m.run") / "global" / "last.ckpt"
    assert torch.load(last, weights_only=True)["global_step"] == 1
    point = read_resume_point(last)
    assert point.stage is Stage.GLOBAL and point.config.patch_size == 32

    # sizes and backbone come from the checkpoint, not from these (different) settings
    resumed = TrainSettings(plan="global", max_steps=2, resume=str(last), checkpoint_every=1,
                            **TINY | {"backbone": "resnet34", "patch_size": 64})
    train(data, resumed, out, overwrite=True)
    assert torch.load(last, weights_only=True)["global_step"] == 2
    # one run logged step 0, the resumed one only step 1: it did not start over
    assert [step for step, _ in _train_losses(out.with_name("m.run"), "global")] == [0, 1]
    with pytest.raises(InputError, match="pass --stage global or --stage all"):
        train(data, TrainSettings(plan="global-to-local", resume=str(last), **TINY), out,
              overwrite=True)
    # ... unless they were asked for explicitly (on the command line): then they must match
    with pytest.raises(InputError, match=r"--backbone resnet34 but --resume .* was trained with "
                                         r"--backbone resnet18; leave out --backbone"):
        train(data, TrainSettings(plan="global", resume=str(last), given=frozenset(
            {"backbone", "global_size"}), **TINY | {"backbone": "resnet34"}), out,
            overwrite=True)


def test_resume_needs_a_run_checkpoint(data, tmp_path):
    foreign = tmp_path / "x.ckpt"
    torch.save({"state_dict": {}}, foreign)
    with pytest.raises(CheckpointError, match="was not written by 'glnet-geo train'"):
        train(data, TrainSettings(resume=str(foreign), **TINY), tmp_path / "m.pt")
    with pytest.raises(CheckpointError, match="does not exist"):
        read_resume_point(tmp_path / "missing.ckpt")


def test_existing_output_and_bad_sizes(data, tmp_path):
    (tmp_path / "m.pt").write_bytes(b"x")
    with pytest.raises(OutputExistsError, match="--overwrite"):
        train(data, TrainSettings(**TINY), tmp_path / "m.pt")
    with pytest.raises(InputError, match="overlap below the patch size"):
        TrainSettings(**TINY | {"min_overlap": 40})
    assert StagePlan("all").stages == list(Stage)


def test_ddp_on_two_cpu_processes_completes_steps(data, tmp_path):
    out = tmp_path / "ddp.pt"
    command = [str(Path(sys.executable).with_name("glnet-geo")), "-v", "train", "custom",
               "--images", *data.images[:1], "--images", data.images[1],
               "--labels", *data.labels[:1], "--labels", data.labels[1],
               "--classes", data.classes, "--scene-size", "64", "--stage", "global",
               "--max-steps", "2", "--backbone", "resnet18", "--global-size", "64",
               "--patch-size", "32", "--min-overlap", "0", "--batch-size", "2",
               "--accelerator", "cpu", "--devices", "2", "--strategy", "ddp", "--quiet",
               "--checkpoint-every", "1",
               "-o", str(out)]
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, capture_output=True, text=True, timeout=400, env=env,
                          cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "MEMBER: 2/2" in done.stderr  # two processes joined the group
    assert torch.load(out.with_name("ddp.run") / "global" / "last.ckpt",
                      weights_only=True)["global_step"] == 2  # a second step synchronises too
    assert load_checkpoint(out).config.stage is Stage.GLOBAL


def test_epochs_per_stage_default_to_the_official_schedule():
    from glnet_geo.training.settings import OFFICIAL_EPOCHS, stage_epochs

    default = TrainSettings(**TINY)
    assert [stage_epochs(default, s) for s in Stage] == [120, 50, 120] == \
        list(OFFICIAL_EPOCHS.values())
    three = TrainSettings(max_epochs=[3, 2, 1], **TINY)
    assert [stage_epochs(three, s) for s in Stage] == [3, 2, 1]
    one = TrainSettings(max_epochs=[4], **TINY)
    assert [stage_epochs(one, s) for s in Stage] == [4, 4, 4]
    assert stage_epochs(TrainSettings(max_steps=5, **TINY), Stage.GLOBAL) is None
    with pytest.raises(InputError, match="give one count for every stage or three"):
        TrainSettings(max_epochs=[1, 2], **TINY)


def test_a_new_model_from_random_encoders_gets_one_warning(data, tmp_path, caplog):
    train(data, TrainSettings(plan="global", max_steps=1, **TINY), tmp_path / "m.pt")
    lines = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"
             and "random encoders" in r.getMessage()]
    assert len(lines) == 1 and "--weights imagenet" in lines[0]
    assert "the paper started from ImageNet weights" in lines[0]
