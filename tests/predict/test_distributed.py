import os

import numpy as np
import pytest
import rasterio
import torch

from glnet_geo.errors import GLNetGeoError, InputError
from glnet_geo.io.parts import PartStore, parts_directory
from glnet_geo.predict import (
    OutputPlan,
    PredictOptions,
    distributed,
    predict_raster,
    predict_rasters,
)
from glnet_geo.predict.distributed import Cluster, checkpoint_loads, dask_client, predict_in_parts

#: With the tiny checkpoints (160 px scenes, 32 px halo), 250 px gives 2 x 2 scenes.
SIDE = 250


@pytest.fixture(scope="module")
def cluster():
    """One local Dask cluster for the module, as ``--workers 2`` starts it."""
    pytest.importorskip("distributed")
    with dask_client(Cluster(workers=2)) as client:
        yield client


def _environ():
    return {k: v for k, v in os.environ.items() if k.startswith("MALLOC_") or
            k == "OMP_NUM_THREADS"}


def test_local_workers_start_with_glnet_geos_malloc_thresholds(cluster):
    # Dask's MALLOC_TRIM_THRESHOLD_ of 64 KiB made GLNet about 1.5x slower in a worker
    for environ in cluster.run(_environ).values():
        assert environ == {"OMP_NUM_THREADS": "1", "MALLOC_MMAP_THRESHOLD_": str(32 * 2**20),
                           "MALLOC_TRIM_THRESHOLD_": str(128 * 2**20)}


def read(path, band=None):
    with rasterio.open(path) as src:
        return src.read(band) if band else src.read()


def tiled(make_raster, name="scene.tif", seed=0):
    return make_raster(name, SIDE, SIDE, seed=seed, tiled=True, blockxsize=16, blockysize=16,
                       compress="deflate")


def test_workers_write_the_single_process_files(cluster, make_checkpoint, make_raster, tmp_path):
    checkpoint, raster = make_checkpoint(), tiled(make_raster)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as each worker: float sums then agree to the last bit
    try:
        single = predict_raster(checkpoint, raster, tmp_path / "single.tif",
                                probabilities=tmp_path / "single-p.tif", progress=False)
    finally:
        torch.set_num_threads(threads)
    assert single.scenes == 4
    dask = predict_raster(checkpoint, raster, tmp_path / "dask.tif",
                          probabilities=tmp_path / "dask-p.tif", progress=False,
                          scheduler=cluster.scheduler.address)
    assert dask.scenes == 4
    classes = read(dask.classes, 1)
    assert len(np.unique(classes)) >= 2
    assert np.array_equal(classes, read(single.classes, 1))
    assert dask.classes.read_bytes() == single.classes.read_bytes()
    assert dask.probabilities.read_bytes() == single.probabilities.read_bytes()
    assert not parts_directory(dask.classes).exists()
    loads = cluster.run(checkpoint_loads)
    assert all(count == 1 for worker in loads.values() for count in worker.values()), loads


def test_a_folder_of_rasters_on_workers(cluster, make_checkpoint, make_raster, tmp_path):
    inputs = [make_raster(f"{name}.tif", h, w, seed=i)
              for i, (name, h, w) in enumerate([("a", 90, 100), ("b", 170, 60), ("c", 40, 50)])]
    checkpoint = make_checkpoint()
    single = predict_rasters(checkpoint, inputs, tmp_path / "single", mode="global",
                             progress=False)
    dask = predict_rasters(checkpoint, inputs, tmp_path / "dask", mode="global", progress=False,
                           scheduler=cluster.scheduler.address)
    assert [r.classes.name for r in dask] == ["a.tif", "b.tif", "c.tif"]
    for s, d in zip(single, dask, strict=True):
        assert np.array_equal(read(d.classes, 1), read(s.classes, 1))
    assert sorted(p.name for p in (tmp_path / "dask").iterdir()) == [
        f"{stem}{suffix}" for stem in "abc" for suffix in (".qml", ".tif", ".tif.aux.xml")]


def test_a_failed_scene_is_named_and_the_others_are_kept_then_resumed(
        cluster, make_checkpoint, make_raster, tmp_path, monkeypatch, corrupt_last_tile):
    checkpoint = make_checkpoint()
    broken, good = tiled(make_raster, "broken.tif"), tiled(make_raster, "good.tif", seed=3)
    restore = corrupt_last_tile(broken)
    out = tmp_path / "out"
    address = cluster.scheduler.address
    with pytest.raises(GLNetGeoError) as failure:
        predict_rasters(checkpoint, [broken, good], out, mode="global", progress=False,
                        scheduler=address)
    message = str(failure.value)
    assert "scene 4 of 4 of input" in message and "broken.tif" in message
    assert "--resume" in message and "\n" not in message
    assert sorted(p.name for p in out.iterdir() if p.suffix not in (".qml", ".xml")) == [
        ".broken.tif.parts", "good.tif"]
    store = parts_directory(out / "broken.tif")
    kept = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in store.glob("scene-*.tif")}
    assert len(kept) == 3

    restore()
    seen = {}
    remove = PartStore.remove

    def record_then_remove(self):
        seen.update({p.name: (p.stat().st_ino, p.stat().st_mtime_ns)
                     for p in self.directory.glob("scene-*.tif")})
        remove(self)

    monkeypatch.setattr(PartStore, "remove", record_then_remove)
    results = predict_rasters(checkpoint, [broken, good], out, mode="global", progress=False,
                              resume=True, scheduler=address)
    assert [r.scenes for r in results] == [4, 0]  # good.tif was finished: skipped
    assert results[0].resumed == 3
    assert {name: seen[name] for name in kept} == kept  # not recomputed, not rewritten
    single = predict_raster(checkpoint, broken, tmp_path / "single.tif", mode="global",
                            progress=False)
    assert np.array_equal(read(out / "broken.tif", 1), read(single.classes, 1))
    assert not store.exists()


def test_an_interrupted_run_resumes_in_process(make_checkpoint, make_raster, tmp_path,
                                               monkeypatch):
    checkpoint, raster = make_checkpoint(), tiled(make_raster)
    expected = predict_raster(checkpoint, raster, tmp_path / "expected.tif", mode="global",
                              progress=False)
    computed = []
    predict_scene = distributed.predict_scene

    def killed_after_two(model, raster, scene, *args, **kwargs):
        if len(computed) == 2:
            raise KeyboardInterrupt
        computed.append(scene.index)
        return predict_scene(model, raster, scene, *args, **kwargs)

    out = tmp_path / "classes.tif"
    monkeypatch.setattr(distributed, "predict_scene", killed_after_two)
    with pytest.raises(KeyboardInterrupt):
        predict_raster(checkpoint, raster, out, mode="global", progress=False, resume=True)
    assert not out.exists() and computed == [0, 1]
    assert len(list(parts_directory(out).glob("scene-*.tif"))) == 2

    with pytest.raises(InputError, match="--overwrite"):  # other settings: refused
        predict_raster(checkpoint, raster, out, progress=False, resume=True)  # glnet mode

    computed.clear()
    monkeypatch.setattr(distributed, "predict_scene",
                        lambda model, raster, scene, *a, **k: (
                            computed.append(scene.index), predict_scene(model, raster, scene,
                                                                        *a, **k))[1])
    result = predict_raster(checkpoint, raster, out, mode="global", progress=False, resume=True)
    assert computed == [2, 3] and (result.scenes, result.resumed) == (4, 2)
    assert out.read_bytes() == expected.classes.read_bytes()
    assert not parts_directory(out).exists()
    computed.clear()
    assert predict_raster(checkpoint, raster, out, mode="global", progress=False,
                          resume=True).scenes == 0
    assert computed == []


def test_a_run_without_resume_starts_again(make_checkpoint, make_raster, tmp_path):
    checkpoint, raster = make_checkpoint(), make_raster(height=60, width=60)
    stale = parts_directory(tmp_path / "classes.tif")
    stale.mkdir()
    (stale / "scene-000000.tif").write_bytes(b"not a part")
    result = predict_in_parts(checkpoint, [str(raster)], [OutputPlan(tmp_path / "classes.tif")],
                              PredictOptions(progress=False))
    assert result[0].resumed == 0 and not stale.exists()
    assert read(result[0].classes, 1).shape == (60, 60)


def test_cluster_options_are_checked():
    with pytest.raises(InputError, match="--scheduler"):
        Cluster(workers=2, scheduler="tcp://127.0.0.1:8786")
    with pytest.raises(InputError, match="--workers 0"):
        Cluster(workers=0)
    assert Cluster(workers=2).torch_threads == 1
    assert Cluster(scheduler="tcp://h:8786").torch_threads is None


def test_a_worker_killed_mid_run_costs_nothing_but_time(cluster, make_checkpoint, make_raster,
                                                        tmp_path):
    import signal
    import threading
    import time

    checkpoint, raster = make_checkpoint(), tiled(make_raster, seed=7)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        single = predict_raster(checkpoint, raster, tmp_path / "single.tif", progress=False)
    finally:
        torch.set_num_threads(threads)
    out = tmp_path / "dask.tif"
    parts = parts_directory(out)
    killed = []

    def kill_a_worker_once_a_scene_is_done() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not list(parts.glob("scene-*.tif")):
            time.sleep(0.01)
        pid = next(iter(cluster.run(os.getpid).values()))
        os.kill(pid, signal.SIGKILL)
        killed.append(pid)

    killer = threading.Thread(target=kill_a_worker_once_a_scene_is_done)
    killer.start()
    result = predict_raster(checkpoint, raster, out, progress=False,
                            scheduler=cluster.scheduler.address)
    killer.join()
    assert killed and result.scenes == 4
    assert np.array_equal(read(out, 1), read(single.classes, 1))
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "dask.qml", "dask.tif", "dask.tif.aux.xml", "scene.tif", "single.qml", "single.tif",
        "single.tif.aux.xml"]
    cluster.wait_for_workers(2, timeout=60)  # the nanny restarted it, for the next tests


def test_dask_logs_follow_glnet_geo_debug_and_are_restored():
    import logging

    from glnet_geo.predict.distributed import dask_log_level, dask_logs

    package, dask = logging.getLogger("glnet_geo"), logging.getLogger("distributed")
    before = dask.level
    assert dask_log_level() == logging.WARNING
    package.setLevel(logging.DEBUG)
    try:
        assert dask_log_level() == logging.INFO
    finally:
        package.setLevel(logging.NOTSET)
    with dask_logs(logging.ERROR):
        assert dask.level == logging.ERROR
    assert dask.level == before
