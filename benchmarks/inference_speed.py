"""How close does GLNet's inference come to the hardware's matmul rate, per precision?

For each backbone and network mode, one 2448 x 2448 px scene (DeepGlobe's size)
on the official grid (a 508 px global view, 36 patches of 508 px overlapping by
at least 50 px) goes through a random-weight GLNet prepared as ``glnet-geo
predict`` prepares it (:meth:`glnet_geo.models.GLNet.for_inference`), for each
precision x memory format x patch sub-batch size. Each configuration runs in a
fresh Python process and prints:

- ``s/scene``: the model's own time on the scene (``GLNet.iter_scene`` over
  the sub-batches, warm: after one untimed pass of the whole scene);
- ``GFLOP``: the scene's floating-point operations
  (:class:`torch.utils.flop_counter.FlopCounterMode`, multiply-adds counted
  as two; counted in the first configuration of each backbone and mode, the
  same in all), ``GFLOP/s`` achieved and its ratio to the dense matmul rate of the
  same dtype measured in the same run (``torch.mm`` of 4096 x 4096);
- ``peak MiB``: the process's peak resident memory (``ru_maxrss``, before
  the FLOP count: imports, the model built in fp32 and prepared, the scene);
- ``agree %``: the share of the scene's pixels whose class (predict's
  blending, :func:`glnet_geo.predict.blending.blend_scene`) equals that of the fp32
  run of the same backbone and mode. Random weights give nearly tied logits,
  so this is a lower bound of what trained weights give (see RESULTS.md).

Usage:
    python benchmarks/inference_speed.py [--backbones resnet50 resnet18]
        [--modes global-to-local bidirectional] [--precisions fp32 bf16]
        [--formats contiguous channels-last] [--batch-sizes 1 2 4 8]
        [--device cpu] [--scene-size 2448] [--size 508]
"""

from __future__ import annotations

import argparse
import itertools
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from inference_memory import cpu_name

MODES = ("global-to-local", "bidirectional")
FORMATS = ("contiguous", "channels-last")


def matmul_rate(dtype_name: str, device: str, n: int = 4096, repeats: int = 3) -> float:
    """GFLOP/s of the best of ``repeats`` dense ``n`` x ``n`` products in that dtype."""
    import torch

    from glnet_geo.precision import Precision

    dtype = Precision(dtype_name).dtype
    a = torch.rand(n, n, device=device).to(dtype)
    b = torch.rand(n, n, device=device).to(dtype)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        torch.mm(a, b)
        _sync(device)
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best / 1e9


def run_one(backbone: str, mode: str, precision: str, memory_format: str, batch_size: int,
            device: str, scene_size: int, size: int, classes_path: str,
            count_flops: bool) -> dict:
    """Build the model, run the scene, return the measurements (in a fresh process)."""
    from glnet_geo.allocator import keep_freed_memory

    keep_freed_memory()  # first, as the glnet-geo command does
    import numpy as np
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from glnet_geo.io.grid import boxes_from_windows, patch_windows
    from glnet_geo.models import GLNet
    from glnet_geo.precision import Precision
    from glnet_geo.predict import PredictMode, SceneSettings
    from glnet_geo.predict.blending import blend_scene

    torch.manual_seed(0)
    model = GLNet(num_classes=7, backbone=backbone, fixed_global=mode == "bidirectional")
    model.eval().for_inference(Precision(precision).dtype, memory_format == "channels-last")
    model.to(device)
    windows = patch_windows(scene_size, scene_size, size, 50)
    boxes = boxes_from_windows(windows, scene_size, scene_size)
    generator = torch.Generator().manual_seed(1)
    scene = torch.rand(3, scene_size, scene_size, generator=generator) * 2 - 1
    global_image = torch.nn.functional.interpolate(scene[None], size=(size, size),
                                                   mode="area").to(device)

    def read(chunk):
        return torch.stack([scene[:, w.row_off:w.row_off + size, w.col_off:w.col_off + size]
                            for w in chunk]).to(device)

    def batches():
        for start in range(0, len(windows), batch_size):
            yield read(windows[start:start + batch_size])

    def run_model():
        for _ in model.iter_scene(global_image, boxes, batches(), mode=mode,
                                  scene_shape=(scene_size, scene_size)):
            pass

    settings = SceneSettings(PredictMode.GLNET, model_mode(mode), size, size, 50, batch_size)
    scores = blend_scene(model, global_image, windows, read, (scene_size, scene_size),
                         settings, probabilities=False)  # also the warm-up
    np.save(classes_path, scores.max(0).indices.to(torch.uint8).cpu().numpy())
    del scores
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    with torch.inference_mode():
        _sync(device)
        start = time.perf_counter()
        run_model()
        _sync(device)
        seconds = time.perf_counter() - start
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        gflop = None
        if count_flops:  # the same for every precision, format and sub-batch
            counter = FlopCounterMode(display=False)
            with counter:
                run_model()
            gflop = counter.get_total_flops() / 1e9
    result = {"seconds": seconds, "gflop": gflop, "peak_mib": peak}
    if device.startswith("cuda"):
        result["cuda_peak_mib"] = torch.cuda.max_memory_allocated() / 2**20
    return result


def model_mode(mode: str):
    """The :class:`~glnet_geo.models.GLNetMode` of a mode name."""
    from glnet_geo.models import GLNetMode

    return GLNetMode(mode)


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbones", nargs="+", default=["resnet50", "resnet18"])
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    parser.add_argument("--precisions", nargs="+", default=["fp32", "bf16"],
                        choices=["fp32", "bf16", "fp16"])
    parser.add_argument("--formats", nargs="+", default=list(FORMATS), choices=FORMATS)
    parser.add_argument("--batch-sizes", nargs="+", type=int, default=[1, 2, 4, 8])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--scene-size", type=int, default=2448)
    parser.add_argument("--size", type=int, default=508, help="global view and patch side")
    parser.add_argument("--single", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.single:
        print(json.dumps(run_one(**json.loads(args.single))))
        return

    import numpy as np
    import torch

    device_name = (torch.cuda.get_device_name(args.device) if args.device.startswith("cuda")
                   else cpu_name())
    print(f"# {device_name}, {torch.get_num_threads()} threads, torch {torch.__version__}")
    rates = {p: matmul_rate(p, args.device) for p in args.precisions}
    print("# dense matmul GFLOP/s: " + ", ".join(f"{p} {r:.0f}" for p, r in rates.items()))
    print(f"# scene {args.scene_size}^2 px, global view and patches {args.size} px, "
          "random weights")
    print(f"{'backbone':<9} {'mode':<16} {'prec':<5} {'format':<14} {'batch':>5} "
          f"{'s/scene':>8} {'GFLOP':>7} {'GFLOP/s':>8} {'/matmul':>7} {'peak MiB':>9} "
          f"{'agree %':>8}")
    with tempfile.TemporaryDirectory() as tmp:
        for backbone, mode in itertools.product(args.backbones, args.modes):
            reference, gflop = None, None
            for precision, memory_format, batch_size in itertools.product(
                    args.precisions, args.formats, args.batch_sizes):
                classes = Path(tmp) / f"{backbone}-{mode}-{precision}-{memory_format}-" \
                                      f"{batch_size}.npy"
                job = dict(backbone=backbone, mode=mode, precision=precision,
                           memory_format=memory_format, batch_size=batch_size,
                           device=args.device, scene_size=args.scene_size, size=args.size,
                           classes_path=str(classes), count_flops=gflop is None)
                out = subprocess.run([sys.executable, __file__, "--single", json.dumps(job)],
                                     check=True, capture_output=True, text=True).stdout
                r = json.loads(out.strip().splitlines()[-1])
                gflop = r["gflop"] if gflop is None else gflop
                predicted = np.load(classes)
                if reference is None and precision == "fp32":
                    reference = predicted
                agree = ("" if reference is None
                         else f"{100 * np.mean(predicted == reference):.2f}")
                rate = gflop / r["seconds"]
                cuda = f" cuda {r['cuda_peak_mib']:.0f} MiB" if "cuda_peak_mib" in r else ""
                print(f"{backbone:<9} {mode:<16} {precision:<5} {memory_format:<14} "
                      f"{batch_size:>5} {r['seconds']:>8.2f} {gflop:>7.0f} {rate:>8.0f} "
                      f"{rate / rates[precision]:>7.2f} {r['peak_mib']:>9.0f} {agree:>8}{cuda}",
                      flush=True)


if __name__ == "__main__":
    main()
