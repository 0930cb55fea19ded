import logging
import os
from unittest import mock

import numpy as np
import pytest
import rasterio
from click.testing import CliRunner

from glnet_geo.cli import main

#: With the tiny checkpoints (160 px scenes, 32 px halo), 250 px gives 2 x 2 scenes.
SIDE = 250


def run(*args):
    return CliRunner().invoke(main, ["predict", *map(str, args), "--no-progress"])


@pytest.fixture(scope="module")
def scheduler():
    """Address of one local Dask cluster for the module: 2 processes, 1 thread each.

    A cluster of Dask's defaults, as a user's would be. Its nannies put Dask's
    ``MALLOC_TRIM_THRESHOLD_`` into this process's environment for good, so the environment
    is restored afterwards: the clusters of later tests inherit it otherwise.
    """
    distributed = pytest.importorskip("distributed")
    with mock.patch.dict(os.environ), \
            distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                     dashboard_address=None,
                                     scheduler_kwargs={"dashboard_address": ":0"}) as local:
        yield local.scheduler_address


def classes(path):
    with rasterio.open(path) as src:
        return src.read(1)


def test_workers_2_give_the_single_process_classes(make_checkpoint, make_raster, tmp_path,
                                                   caplog):
    raster = make_raster("ortho.tif", SIDE, SIDE)  # 2 x 2 scenes
    checkpoint = make_checkpoint()
    # global mode keeps this fast; tests/predict/test_distributed.py compares GLNet mode
    single = run(checkpoint, raster, "-o", tmp_path / "single.tif", "--mode", "global")
    assert single.exit_code == 0, single.output
    assert "4 scene(s)" in single.output
    workers = run(checkpoint, raster, "-o", tmp_path / "workers.tif", "--mode", "global",
                  "--workers", 2)
    assert workers.exit_code == 0, workers.output
    assert "4 scene(s)" in workers.output
    chatter = [r.getMessage() for r in caplog.records
               if r.name.startswith("distributed") and r.levelno < logging.WARNING]
    assert chatter == [], "Dask logs INFO only under --verbose"
    assert np.array_equal(classes(tmp_path / "workers.tif"), classes(tmp_path / "single.tif"))
    rasters = sorted(p.name for p in tmp_path.iterdir() if p.suffix == ".tif")
    assert rasters == ["ortho.tif", "single.tif", "workers.tif"]


def test_a_folder_gives_one_output_per_input(scheduler, make_checkpoint, make_raster, tmp_path):
    for i, (h, w) in enumerate([(90, 100), (170, 60), (40, 50)]):
        make_raster(f"tile{i}.tif", h, w, seed=i)
    (tmp_path / "notes.txt").write_text("not a raster")
    checkpoint = make_checkpoint()
    single = run(checkpoint, tmp_path, "-o", tmp_path / "single", "--mode", "global")
    assert single.exit_code == 0, single.output
    dask = run(checkpoint, tmp_path, "-o", tmp_path / "dask", "--mode", "global",
               "--scheduler", scheduler)
    assert dask.exit_code == 0, dask.output
    names = ["tile0.tif", "tile1.tif", "tile2.tif"]
    assert sorted(p.name for p in (tmp_path / "dask").glob("*.tif")) == names
    for name in names:
        assert np.array_equal(classes(tmp_path / "dask" / name),
                              classes(tmp_path / "single" / name))


def test_a_failed_scene_is_one_line_and_resume_finishes(scheduler, make_checkpoint, make_raster,
                                                        tmp_path, corrupt_last_tile):
    raster = make_raster("ortho.tif", SIDE, SIDE, tiled=True, blockxsize=16, blockysize=16,
                         compress="deflate")
    restore = corrupt_last_tile(raster)
    out = tmp_path / "classes.tif"
    args = (make_checkpoint(), raster, "-o", out, "--mode", "global", "--scheduler", scheduler)
    failed = run(*args)
    assert failed.exit_code == 1
    lines = failed.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: scene 4 of 4 of input"), failed.output
    assert "ortho.tif" in lines[0] and "--resume" in lines[0]
    assert not out.exists()
    restore()
    resumed = run(*args, "--resume")
    assert resumed.exit_code == 0, resumed.output
    assert "4 scene(s) (3 resumed)" in resumed.output
    again = run(*args, "--resume")
    assert again.exit_code == 0 and "already done" in again.output


def test_workers_and_scheduler_exclude_each_other(make_checkpoint, make_raster, tmp_path):
    result = run(make_checkpoint(), make_raster(), "-o", tmp_path / "o.tif", "--workers", 2,
                 "--scheduler", "tcp://127.0.0.1:8786")
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        "Error: --workers 2 and --scheduler tcp://127.0.0.1:8786 both given; use --workers "
        "for a local cluster or --scheduler for an existing one"]


def test_a_folder_without_rasters_is_refused(make_checkpoint, tmp_path):
    (tmp_path / "empty").mkdir()
    result = run(make_checkpoint(), tmp_path / "empty", "-o", tmp_path / "out")
    assert result.exit_code == 1
    assert "matches no raster" in result.output
