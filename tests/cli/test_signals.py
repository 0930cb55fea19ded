"""Stops from outside, sent to real ``glnet-geo`` processes: SIGTERM, SIGHUP and SIGINT are
handled alike (one line, nothing half-written, no temporary), and a SIGKILL's temporaries do
not confuse the next run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import rasterio
from click.testing import CliRunner

from glnet_geo.cli import main

#: How long a started command may take to reach the point where it writes (imports included).
START_TIMEOUT_S = 120


def start(*args: object) -> subprocess.Popen:
    """Start ``glnet-geo ARGS`` as its own process (one torch thread)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    code = "from glnet_geo.cli import run; run()"
    # as from a terminal: a test run started in the background (SIGINT ignored, which the
    # child would inherit, and Python then leaves Ctrl-C ignored) must not change the command
    return subprocess.Popen([sys.executable, "-c", code, *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            preexec_fn=_default_sigint)


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def wait_for(process: subprocess.Popen, directory: Path, pattern: str) -> list[Path]:
    """Wait until ``directory`` holds a file matching ``pattern`` (the command is writing)."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        found = list(directory.glob(pattern))
        if found:
            return found
        if process.poll() is not None:
            pytest.fail(f"the command ended before writing: {process.communicate()}")
        time.sleep(0.02)
    process.kill()
    pytest.fail(f"no {pattern} in {directory} after {START_TIMEOUT_S} s")


def stop(process: subprocess.Popen, signum: int) -> tuple[int, list[str]]:
    """Send ``signum``, wait for the end; return the exit status and the stderr lines."""
    process.send_signal(signum)
    _, err = process.communicate(timeout=120)
    return process.returncode, err.strip().splitlines()


@pytest.fixture
def long_raster(make_raster):
    """A raster of 49 scenes of the tiny checkpoint: long enough to be stopped midway."""
    return make_raster("long.tif", 1000, 1000)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT],
                         ids=["SIGTERM", "SIGHUP", "SIGINT"])
def test_a_stopped_predict_says_so_and_leaves_nothing(make_checkpoint, long_raster, tmp_path,
                                                      signum):
    out = tmp_path / "out"
    out.mkdir()
    process = start("predict", make_checkpoint(), long_raster, "-o", out / "classes.tif",
                    "--probabilities", out / "probs.tif", "--no-progress")
    wait_for(process, out, ".classes.tif.*.partial.tif")
    code, lines = stop(process, signum)
    name = "Ctrl-C (SIGINT)" if signum == signal.SIGINT else signal.Signals(signum).name
    assert code == 128 + signum, lines
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"Error: predict stopped by {name}; nothing half-written"), lines
    assert list(out.iterdir()) == []


def test_the_temporaries_of_a_killed_predict_are_removed_by_the_next_run(
        make_checkpoint, long_raster, make_raster, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    process = start("predict", make_checkpoint(), long_raster, "-o", out / "classes.tif",
                    "--no-progress")
    left = wait_for(process, out, ".classes.tif.*.partial.tif")
    process.kill()
    process.communicate()
    assert all(p.exists() for p in left)  # what SIGKILL leaves: nothing could clean up
    small = make_raster("small.tif", 40, 40)
    result = CliRunner().invoke(main, ["predict", str(make_checkpoint()), str(small), "-o",
                                       str(out / "classes.tif"), "--mode", "global"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == [
        "classes.qml", "classes.tif", "classes.tif.aux.xml"]
    with rasterio.open(out / "classes.tif") as src:
        assert src.shape == (40, 40)


def test_a_stopped_vectorize_says_so_and_leaves_nothing(tmp_path):
    import numpy as np
    from rasterio.transform import from_origin

    mask = tmp_path / "classes.tif"
    rng = np.random.default_rng(0)
    with rasterio.open(mask, "w", driver="GTiff", width=1500, height=1500, count=1,
                       dtype="uint8", crs="EPSG:32633", tiled=True,
                       transform=from_origin(500_000.0, 4_000_000.0, 1, 1)) as dst:
        dst.write(rng.integers(0, 3, (1, 1500, 1500), dtype=np.uint8))
    out = tmp_path / "out"
    out.mkdir()
    process = start("vectorize", mask, "-o", out / "polygons.gpkg", "--block-size", "256")
    wait_for(process, out, ".polygons.gpkg.*.tmp.gpkg")
    code, lines = stop(process, signal.SIGTERM)
    assert code == 128 + signal.SIGTERM, lines
    assert lines == ["Error: vectorize stopped by SIGTERM; nothing half-written was left under "
                     "a final name and no temporary file was left"]
    assert list(out.iterdir()) == []


def test_a_stopped_train_says_so_and_writes_no_checkpoint(tmp_path):
    from glnet_geo.datasets import synthetic

    files = synthetic.write_custom_dataset(tmp_path / "tiles", count=2, size=64, seed=3)
    out = tmp_path / "custom.pt"
    process = start("train", "custom", "--images", files.images[0].parent / "*.tif",
                    "--labels", files.labels[0].parent, "--classes", files.classes,
                    "--scene-size", "64", "-o", out, "--stage", "all", "--max-steps", "100000",
                    "--backbone", "resnet18", "--global-size", "64", "--patch-size", "32",
                    "--min-overlap", "0", "--batch-size", "1", "--log-every", "1", "--quiet")
    wait_for(process, tmp_path, "custom.run/logs/*/version_0/metrics.csv")
    code, lines = stop(process, signal.SIGTERM)
    assert code == 128 + signal.SIGTERM, lines
    lines = [line for line in lines if "training from random encoders" not in line]
    assert len(lines) == 1 and lines[0].startswith(
        "Error: train stopped by SIGTERM; nothing half-written"), lines
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_a_stopped_dask_run_keeps_its_scenes_and_resume_gives_the_same_pixels(
        make_checkpoint, make_raster, tmp_path):
    raster = make_raster("ortho.tif", 250, 250)  # 9 scenes
    out = tmp_path / "out"
    out.mkdir()
    args = ("predict", make_checkpoint(), raster, "-o", out / "classes.tif", "--no-progress")
    process = start(*args, "--workers", "1")
    wait_for(process, out, ".classes.tif.parts/scene-*.tif")
    code, lines = stop(process, signal.SIGTERM)
    assert code == 128 + signal.SIGTERM, lines
    assert len(lines) == 1 and lines[0].startswith("Error: predict stopped by SIGTERM"), lines
    assert "rerun with --resume" in lines[0]
    assert sorted(p.name for p in out.iterdir()) == [".classes.tif.parts"]
    resumed = CliRunner().invoke(main, [str(a) for a in args] + ["--resume"])
    assert resumed.exit_code == 0, resumed.output
    assert "resumed)" in resumed.output
    single = CliRunner().invoke(main, [str(a) for a in args[:3]] + [
        "-o", str(tmp_path / "single.tif"), "--no-progress"])
    assert single.exit_code == 0, single.output
    with rasterio.open(out / "classes.tif") as a, rasterio.open(tmp_path / "single.tif") as b:
        assert (a.read(1) == b.read(1)).all()
    assert sorted(p.name for p in out.iterdir()) == [
        "classes.qml", "classes.tif", "classes.tif.aux.xml"]
