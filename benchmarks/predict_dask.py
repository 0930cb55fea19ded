"""What does ``predict --workers 2`` cost or gain against one process, at equal total threads?

Three configurations predict the same raster (>= 8 scenes) with the same
random-weight ResNet-18 GLNet checkpoint, each in a fresh Python process:

- ``single``: :func:`glnet_geo.predict_raster` in one process with 2 torch
  threads (the default path: no Dask, no parts on disk);
- ``dask-1x2``: a :class:`dask.distributed.LocalCluster` of 1 worker process
  with 2 torch threads (``--workers 1 --threads-per-worker 2``): the same
  threads as ``single``, so the difference is Dask's own cost (tasks, parts
  on disk, assembling the COG);
- ``dask-2x1``: 2 worker processes with 1 torch thread each (what
  ``--workers 2`` starts): the same total threads, split over processes.

For each run it prints the wall time (for ``dask`` split into the cluster's
start and the prediction), throughput in megapixels per second, the overhead
of ``dask`` against ``single`` and the peak resident memory
(``ru_maxrss``) of the process that predicts: the single process, or each
Dask worker (read in the workers through ``Client.run`` before the cluster
closes). The configurations run back to back, ``--repeat`` times, so both
see the same load from other jobs on a shared machine.

Usage:
    python benchmarks/predict_dask.py [--height 640] [--width 1152]
        [--scene-size 384] [--patch-size 128] [--repeat 2] [--mode glnet]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def write_inputs(directory: Path, height: int, width: int, patch: int, scene: int) -> tuple:
    """A seeded 3-band uint8 GeoTIFF and a random-weight ResNet-18 checkpoint."""
    import numpy as np
    import rasterio
    import torch
    from affine import Affine

    from glnet_geo.checkpoint import ModelConfig, Normalization, save_checkpoint
    from glnet_geo.models.stages import Stage

    raster = directory / "input.tif"
    rng = np.random.default_rng(0)
    coarse = rng.random((1, 3, height // 32 + 2, width // 32 + 2), dtype=np.float32)
    field = torch.nn.functional.interpolate(torch.from_numpy(coarse), size=(height, width),
                                            mode="bilinear")[0].numpy()
    with rasterio.open(raster, "w", driver="GTiff", width=width, height=height, count=3,
                       dtype="uint8", crs="EPSG:32631", tiled=True, compress="deflate",
                       transform=Affine(0.5, 0, 500000, 0, -0.5, 4600000)) as dst:
        dst.write((field * 255).astype("uint8"))
    config = ModelConfig(class_names=["a", "b", "c", "d"],
                         class_colors=[(0, 0, 255), (0, 255, 0), (255, 0, 0), (9, 9, 9)],
                         backbone="resnet18", bands=[1, 2, 3],
                         normalization=Normalization(255.0, [0.5] * 3, [0.25] * 3),
                         global_size=patch, patch_size=patch, min_overlap=16, scene_size=scene,
                         stage=Stage.GLOBAL_TO_LOCAL)
    torch.manual_seed(0)
    checkpoint = save_checkpoint(directory / "model.pt", config.build_model().eval(), config)
    return raster, checkpoint


def _peak_rss_mib() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


#: Configuration -> (label, Dask worker processes, torch threads per process).
CONFIGS = {"single": ("1 process x 2 threads", 0, 2),
           "dask-1x2": ("--workers 1 --threads-per-worker 2", 1, 2),
           "dask-2x1": ("--workers 2 (x 1 thread)", 2, 1)}


def child(kind: str, checkpoint: str, raster: str, output: str, mode: str) -> dict:
    """Run one configuration in this (fresh) process and return its figures."""
    from glnet_geo.allocator import keep_freed_memory

    keep_freed_memory()  # first, as the glnet-geo command does
    import torch

    from glnet_geo import predict_raster

    if kind == "single":
        torch.set_num_threads(2)
        start = time.perf_counter()
        result = predict_raster(checkpoint, raster, output, mode=mode, device="cpu",
                                progress=False)
        wall = time.perf_counter() - start
        return {"scenes": result.scenes, "wall_s": wall, "start_s": 0.0,
                "peak_rss_mib": [_peak_rss_mib()]}
    from glnet_geo.predict.distributed import Cluster, dask_client

    _, workers, threads = CONFIGS[kind]
    start = time.perf_counter()
    with dask_client(Cluster(workers=workers)) as client:  # the cluster --workers starts
        started = time.perf_counter() - start
        result = predict_raster(checkpoint, raster, output, mode=mode, device="cpu",
                                progress=False, scheduler=client.scheduler.address,
                                threads_per_worker=threads)
        wall = time.perf_counter() - start
        peaks = client.run(_peak_rss_mib)
    return {"scenes": result.scenes, "wall_s": wall, "start_s": started,
            "peak_rss_mib": sorted(peaks.values())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--height", type=int, default=640)
    parser.add_argument("--width", type=int, default=1152)
    parser.add_argument("--scene-size", type=int, default=384)
    parser.add_argument("--patch-size", type=int, default=128)
    parser.add_argument("--mode", default="glnet")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--child", nargs=5, metavar=("KIND", "CKPT", "RASTER", "OUT", "MODE"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(*args.child)))
        return
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f} at start")
    megapixels = args.height * args.width / 1e6
    with tempfile.TemporaryDirectory() as tmp:
        raster, checkpoint = write_inputs(Path(tmp), args.height, args.width,
                                          args.patch_size, args.scene_size)
        print(f"raster {args.width} x {args.height} px ({megapixels:.2f} MPx), scenes "
              f"{args.scene_size} px, patches {args.patch_size} px, mode {args.mode}")
        print("| run | config | scenes | wall s | cluster start s | MPx/s | overhead "
              "| peak RSS per predicting process (MiB) |")
        print("| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |")
        for run in range(1, args.repeat + 1):
            single_wall = None
            for kind in CONFIGS:
                output = Path(tmp) / f"{kind}-{run}.tif"
                out = subprocess.run([sys.executable, __file__, "--child", kind,
                                      str(checkpoint), str(raster), str(output), args.mode],
                                     check=True, capture_output=True, text=True)
                figures = json.loads(out.stdout.strip().splitlines()[-1])
                wall = figures["wall_s"]
                if kind == "single":
                    single_wall = wall
                    overhead = "-"
                else:
                    overhead = f"{100 * (wall / single_wall - 1):+.1f} %"
                label = CONFIGS[kind][0]
                peaks = ", ".join(f"{p:.0f}" for p in figures["peak_rss_mib"])
                print(f"| {run} | {label} | {figures['scenes']} | {wall:.1f} | "
                      f"{figures['start_s']:.1f} | {megapixels / wall:.3f} | {overhead} "
                      f"| {peaks} |", flush=True)
            import rasterio

            with rasterio.open(Path(tmp) / f"single-{run}.tif") as a:
                single = a.read(1)
            for kind in ("dask-1x2", "dask-2x1"):
                with rasterio.open(Path(tmp) / f"{kind}-{run}.tif") as b:
                    differ = int((single != b.read(1)).sum())
                print(f"run {run}: {kind}: pixels whose class differs from single: {differ} "
                      f"of {single.size} (with 1 thread torch sums in another order)")
    print(f"# load average {os.getloadavg()[0]:.1f} at end")


if __name__ == "__main__":
    main()
