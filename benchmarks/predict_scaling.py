"""Does ``glnet-geo predict`` keep its memory flat as the raster grows, and what does it cost?

For each backbone, mode and raster size, a fresh Python process runs
:func:`glnet_geo.predict_raster` from a GeoTIFF on disk to a COG on disk and
prints:

- peak resident memory during prediction: the kernel's high-water mark
  (``VmHWM``) is reset once the checkpoint is loaded (loading briefly holds the
  weights twice, a peak that would hide prediction's own), then read when
  predict returns; and the resident memory when predict starts (``VmRSS``),
  so the difference is what prediction adds;
- end-to-end wall time (reads, GLNet, blending, windowed writes, COG with
  overviews) and megapixels per second;
- the model-alone time on the same patches, measured inside the run: the
  time spent in GLNet's own calls (``GLNet.iter_scene`` minus the time it
  waits for its lazily read patch batches, and ``GLNet.forward`` in global
  mode). On a machine shared with other jobs this is fairer than a separate
  run, since both figures see the same contention;
- what no pipeline with this input and output can spare, measured in the same
  process: the seconds to decode every pixel of the input once, block by
  block, and the seconds predict spent turning its class raster into the COG
  (GDAL's COG driver and the overviews, ``CogWriter.finish``); with the
  model's time they give the least wall / model such a run can reach;
- with ``--random-alone``, also a separate model-alone run: GLNet on random
  tensors of exactly the shapes predict fed it (one global view per scene,
  the same patch sub-batches), nothing read, blended or written;
- on a GPU, ``torch.cuda.max_memory_allocated`` during predict.

Each run first predicts a small warm-up raster in the same process (untimed),
so one-off costs (torch's first calls, GDAL's drivers) count in neither figure.

Rasters are 3-band uint8 GeoTIFFs (tiled 512 px, DEFLATE) written block by
block into a temporary directory (never whole in memory) and deleted at the
end; checkpoints are random-weight GLNets (weights do not change the cost).

Usage:
    python benchmarks/predict_scaling.py [--sizes 2048 8192 16384]
        [--backbones resnet18 resnet50] [--modes glnet global] [--device cpu]
        [--patch-size 256] [--scene-size 928] [--batch-size N] [--precision auto]
        [--overviews] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CLASSES = ["urban", "agriculture", "rangeland", "forest", "water", "barren", "unknown"]


def write_raster(path: Path, size: int, block: int = 512, overviews: bool = False) -> None:
    """A ``size`` x ``size`` 3-band uint8 GeoTIFF written one block at a time.

    With ``overviews``, internal overviews by 2, 4, 8, ... down to about one
    block (``average``), as a COG of imagery has: decimated reads then decode
    the overview instead of every full-resolution pixel.
    """
    import numpy as np
    import rasterio
    from affine import Affine
    from rasterio.enums import Resampling
    from rasterio.windows import Window

    profile = dict(driver="GTiff", width=size, height=size, count=3, dtype="uint8",
                   crs="EPSG:32631", transform=Affine(0.5, 0, 500000, 0, -0.5, 4600000),
                   tiled=True, blockxsize=block, blockysize=block, compress="deflate",
                   photometric="RGB", BIGTIFF="IF_SAFER")
    rng = np.random.default_rng(0)
    with rasterio.open(path, "w", **profile) as dst:
        for row in range(0, size, block):
            for col in range(0, size, block):
                h, w = min(block, size - row), min(block, size - col)
                y, x = np.mgrid[row:row + h, col:col + w].astype(np.float32)
                base = np.stack([np.sin(x / 97) + np.cos(y / 61), np.sin((x + y) / 143),
                                 np.cos(x / 211) * np.sin(y / 37)])
                noise = rng.integers(0, 12, (3, h, w))
                dst.write((base * 50 + 120 + noise).astype(np.uint8), window=Window(col, row, w, h))
    if overviews:
        factors = [2**k for k in range(1, max(1, (size // block).bit_length()) + 1)]
        with rasterio.open(path, "r+") as dst:
            dst.build_overviews(factors, Resampling.average)


def make_checkpoint(path: Path, backbone: str, patch_size: int, scene_size: int) -> None:
    """A random-weight G->L checkpoint with the benchmark's settings."""
    import torch

    from glnet_geo.checkpoint import ModelConfig, save_checkpoint
    from glnet_geo.models.stages import Stage

    torch.manual_seed(0)
    config = ModelConfig(class_names=CLASSES, backbone=backbone, global_size=patch_size,
                         patch_size=patch_size, min_overlap=32, scene_size=scene_size,
                         stage=Stage.GLOBAL_TO_LOCAL)
    save_checkpoint(path, config.build_model(), config, overwrite=True)


def model_alone(checkpoint, height: int, width: int, settings, device) -> float:
    """Seconds GLNet alone takes on random tensors shaped like predict's inputs."""
    import torch

    from glnet_geo.io.grid import boxes_from_windows, patch_windows
    from glnet_geo.io.scenes import default_halo, scene_grid
    from glnet_geo.models import GLNetMode

    config, model = checkpoint.config, checkpoint.model
    channels, size, patch = config.in_channels, config.global_size, config.patch_size
    scenes = scene_grid(height, width, config.scene_size, default_halo(patch))
    generator = torch.Generator().manual_seed(0)
    elapsed = 0.0
    for scene in scenes:
        h, w = settings.padded_shape(scene.read)
        image = torch.rand(1, channels, size, size, generator=generator).to(device)
        windows = patch_windows(h, w, patch, config.min_overlap)
        boxes = boxes_from_windows(windows, h, w)
        batches = [torch.rand(min(settings.batch_size, len(windows) - i), channels, patch,
                              patch, generator=generator).to(device)
                   for i in range(0, len(windows), settings.batch_size)]
        _sync(device)
        start = time.perf_counter()
        with torch.inference_mode():
            if settings.network_mode is GLNetMode.GLOBAL:
                model(image, None, None, mode=GLNetMode.GLOBAL)
            else:
                for _ in model.iter_scene(image, boxes, iter(batches),
                                          mode=settings.network_mode, scene_shape=(h, w)):
                    pass
        _sync(device)
        elapsed += time.perf_counter() - start
    return elapsed


class ModelClock:
    """Accumulates the time a GLNet spends in its own calls during predict."""

    def __init__(self, model, device) -> None:
        self.seconds = 0.0
        self.device = device
        iter_scene, forward = model.iter_scene, model.forward
        clock = self

        def timed_forward(*args, **kwargs):
            start = time.perf_counter()
            out = forward(*args, **kwargs)
            _sync(device)
            clock.seconds += time.perf_counter() - start
            return out

        def timed_iter_scene(global_image, boxes, patch_batches, **kwargs):
            reading = [0.0]

            def batches():
                source = iter(patch_batches)
                while True:
                    start = time.perf_counter()
                    try:
                        batch = next(source)
                    except StopIteration:
                        reading[0] += time.perf_counter() - start
                        return
                    reading[0] += time.perf_counter() - start
                    yield batch

            start = time.perf_counter()
            parts = iter_scene(global_image, boxes, batches(), **kwargs)  # G runs here
            _sync(device)
            clock.seconds += time.perf_counter() - start
            while True:
                start, read_before = time.perf_counter(), reading[0]
                try:
                    part = next(parts)
                except StopIteration:
                    clock.seconds += time.perf_counter() - start - (reading[0] - read_before)
                    return
                _sync(device)
                clock.seconds += time.perf_counter() - start - (reading[0] - read_before)
                yield part

        model.forward = timed_forward
        model.iter_scene = timed_iter_scene


class CogClock:
    """Accumulates the time predict spends in :meth:`glnet_geo.io.writer.CogWriter.finish`."""

    def __init__(self) -> None:
        from glnet_geo.io.writer import CogWriter

        self.seconds = 0.0
        finish, clock = CogWriter.finish, self

        def timed_finish(writer) -> None:
            start = time.perf_counter()
            finish(writer)
            clock.seconds += time.perf_counter() - start

        CogWriter.finish = timed_finish


def decode_seconds(path: str, mode: str) -> float | None:
    """Seconds to decode every pixel of ``path`` once, one block at a time, all bands.

    None in global mode on an input with overviews, which that mode reads
    instead of the full-resolution pixels (so decoding them is no floor).
    """
    import rasterio

    from glnet_geo.io.reader import block_cache

    with block_cache(64), rasterio.open(path) as src:
        if mode == "global" and src.overviews(1):
            return None
        start = time.perf_counter()
        for _, window in src.block_windows(1):
            src.read(window=window)
        return time.perf_counter() - start


def _memory_mb(field: str) -> float:
    """A ``/proc/self/status`` memory field (``VmRSS``, ``VmHWM``) in MB (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"{field} not in /proc/self/status (this benchmark needs Linux)")


def _reset_peak_memory() -> None:
    """Reset the kernel's resident-memory high-water mark (``VmHWM``) of this process."""
    gc.collect()
    Path("/proc/self/clear_refs").write_text("5")


def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize()


def child(args: argparse.Namespace) -> None:
    """Run one prediction in this process and print its measurements as JSON."""
    from glnet_geo.allocator import keep_freed_memory

    keep_freed_memory()  # first, as the glnet-geo command does
    import rasterio
    import torch

    from glnet_geo.precision import resolve_precision
    from glnet_geo.predict import SceneSettings, predict_raster
    from glnet_geo.predict.settings import prepare_checkpoint, resolve_device

    device = resolve_device(args.device)
    precision = resolve_precision(args.precision, device)
    checkpoint = prepare_checkpoint(args.checkpoint, device, precision)  # as predict does
    settings = SceneSettings.from_config(checkpoint.config, args.mode, args.batch_size,
                                         precision=precision).on(device)
    warmup = Path(args.output).with_suffix(".warmup.tif")
    predict_raster(checkpoint, args.warmup, warmup, mode=args.mode, batch_size=args.batch_size,
                   precision=precision, device=str(device), progress=False, overwrite=True)
    warmup.unlink()
    _reset_peak_memory()
    loaded_mb = _memory_mb("VmRSS")
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    clock, cog = ModelClock(checkpoint.model, device), CogClock()
    start = time.perf_counter()
    result = predict_raster(checkpoint, args.raster, args.output, mode=args.mode,
                            batch_size=args.batch_size, precision=precision,
                            device=str(device), progress=False, overwrite=True)
    _sync(device)
    wall = time.perf_counter() - start
    peak_mb = _memory_mb("VmHWM")
    gpu_mb = (torch.cuda.max_memory_allocated(device) / 2**20
              if device.type == "cuda" else None)
    with rasterio.open(args.raster) as src:
        height, width = src.height, src.width
    del checkpoint.model.forward, checkpoint.model.iter_scene
    random_s = (model_alone(checkpoint, height, width, settings, device)
                if args.random_alone else None)
    print(json.dumps({"scenes": result.scenes, "wall_s": wall, "model_s": clock.seconds,
                      "decode_s": decode_seconds(args.raster, args.mode), "cog_s": cog.seconds,
                      "random_alone_s": random_s,
                      "peak_rss_mb": peak_mb, "loaded_rss_mb": loaded_mb,
                      "peak_gpu_mb": gpu_mb, "megapixels": height * width / 1e6}))


def _fmt(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds:.1f}"


def _least(measured: dict) -> str:
    """The least wall / model: the model, decoding the input once and the COG (or "-")."""
    if measured["decode_s"] is None:
        return "-"
    return f"{1 + (measured['decode_s'] + measured['cog_s']) / measured['model_s']:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[2048, 8192, 16384])
    parser.add_argument("--backbones", nargs="+", default=["resnet18", "resnet50"])
    parser.add_argument("--modes", nargs="+", default=["glnet"],
                        help="glnet (G->L, the expensive one) and/or global (G alone)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--patch-size", type=int, default=256,
                        help="patch and global view side in px")
    parser.add_argument("--scene-size", type=int, default=928,
                        help="scene side in px (928 = 4 patches of 256 overlapping by 32)")
    parser.add_argument("--batch-size", type=int, help="default: the device's")
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--skip", nargs="*", default=[], metavar="BACKBONE:MODE:SIZE",
                        help="combinations not to run, e.g. resnet50:glnet:16384")
    parser.add_argument("--random-alone", action="store_true",
                        help="also time GLNet alone on random tensors in a separate pass")
    parser.add_argument("--overviews", action="store_true",
                        help="give the test rasters internal overviews, as a COG has")
    parser.add_argument("--workdir", type=Path, help="where the temporary rasters go")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--checkpoint", help=argparse.SUPPRESS)
    parser.add_argument("--raster", help=argparse.SUPPRESS)
    parser.add_argument("--warmup", help=argparse.SUPPRESS)
    parser.add_argument("--output", help=argparse.SUPPRESS)
    parser.add_argument("--mode", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return

    import torch

    print(f"# {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch "
          f"threads, torch {torch.__version__}, device {args.device}; patch = global view = "
          f"{args.patch_size} px, scene {args.scene_size} px, batch {args.batch_size or 'default'}"
          f", precision {args.precision}, input overviews: {'yes' if args.overviews else 'no'}")
    print("| backbone | mode | raster | scenes | peak RSS (MB) | RSS at start (MB) | "
          "peak GPU (MB) | wall (s) | MP/s | model in run (s) | wall / model | "
          "decode alone (s) | COG (s) | least wall / model | model alone, random tensors (s) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory(dir=args.workdir, prefix="predict-scaling-") as tmp:
        tmp = Path(tmp)
        rasters, warmup = {}, tmp / "warmup.tif"
        write_raster(warmup, 2 * args.patch_size)
        for size in args.sizes:
            rasters[size] = tmp / f"raster-{size}.tif"
            start = time.perf_counter()
            write_raster(rasters[size], size, overviews=args.overviews)
            print(f"# wrote {size}x{size} test raster in {time.perf_counter() - start:.0f} s",
                  flush=True)
        for backbone in args.backbones:
            checkpoint = tmp / f"{backbone}.pt"
            make_checkpoint(checkpoint, backbone, args.patch_size, args.scene_size)
            for mode in args.modes:
                for size in args.sizes:
                    if f"{backbone}:{mode}:{size}" in args.skip:
                        continue
                    output = tmp / f"classes-{backbone}-{mode}-{size}.tif"
                    command = [sys.executable, __file__, "--child", "--checkpoint",
                               str(checkpoint), "--raster", str(rasters[size]), "--warmup",
                               str(warmup), "--output",
                               str(output), "--mode", mode, "--device", args.device,
                               "--precision", args.precision]
                    if args.batch_size is not None:
                        command += ["--batch-size", str(args.batch_size)]
                    command += ["--random-alone"] if args.random_alone else []
                    done = subprocess.run(command, capture_output=True, text=True, check=True)
                    m = json.loads(done.stdout.strip().splitlines()[-1])
                    gpu = f"{m['peak_gpu_mb']:.0f}" if m["peak_gpu_mb"] is not None else "-"
                    print(f"| {backbone} | {mode} | {size}² | {m['scenes']} | "
                          f"{m['peak_rss_mb']:.0f} | {m['loaded_rss_mb']:.0f} | {gpu} | "
                          f"{m['wall_s']:.1f} | {m['megapixels'] / m['wall_s']:.3f} | "
                          f"{m['model_s']:.1f} | {m['wall_s'] / m['model_s']:.2f} | "
                          f"{_fmt(m['decode_s'])} | {m['cog_s']:.1f} | {_least(m)} | "
                          f"{_fmt(m['random_alone_s'])} |", flush=True)
                    output.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
