"""Peak memory and time of one GLNet scene inference, G->L and G<->L.

A 2448 x 2448 px scene (DeepGlobe's size) seen by a ResNet-50 GLNet with random
weights: a 508 px global view and the 36 patches of 508 px of the official grid,
read lazily in sub-batches through ``GLNet.iter_scene`` under
``torch.inference_mode()``. Each mode runs in a fresh Python process, which
prints its peak resident memory (``ru_maxrss``), the resident memory once the
model is built (so the difference is what inference adds) and, on a GPU,
``torch.cuda.max_memory_allocated``.

Usage:
    python benchmarks/inference_memory.py [--device cpu|cuda] [--batch-size 6]
        [--scene-size 2448] [--size 508] [--modes global-to-local bidirectional]
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import time

MODES = ("global-to-local", "bidirectional")


def run_one(mode: str, device: str, batch_size: int, scene_size: int, size: int) -> dict:
    """Build the model, run one scene in ``mode``, return the measurements."""
    import torch

    from glnet_geo.io.grid import boxes_from_windows, patch_windows
    from glnet_geo.models import GLNet

    torch.manual_seed(0)
    model = GLNet(num_classes=7, backbone="resnet50",
                  fixed_global=mode == "bidirectional").eval().to(device)
    windows = patch_windows(scene_size, scene_size, size, 50)
    boxes = boxes_from_windows(windows, scene_size, scene_size)
    gen = torch.Generator().manual_seed(1)
    global_image = torch.rand(1, 3, size, size, generator=gen).to(device)

    def batches():  # what predict does: read each sub-batch when it is needed
        for start in range(0, len(windows), batch_size):
            n = min(batch_size, len(windows) - start)
            yield torch.rand(n, 3, size, size, generator=gen).to(device)

    def sync():
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    rss_model = _rss_mib()
    sync()
    start = time.perf_counter()
    with torch.inference_mode():
        outputs = 0
        for part in model.iter_scene(global_image, boxes, batches(), mode=mode,
                                     scene_shape=(scene_size, scene_size)):
            outputs += part.logits.shape[0]
    sync()
    seconds = time.perf_counter() - start
    result = {"mode": mode, "patches": outputs, "seconds": round(seconds, 1),
              "rss_model_mib": round(rss_model), "rss_peak_mib": round(_peak_rss_mib())}
    if device.startswith("cuda"):
        result["cuda_peak_mib"] = round(torch.cuda.max_memory_allocated() / 2**20)
    return result


def _rss_mib() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def cpu_name() -> str:
    """The CPU's model name, for the figures' header."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, default=6)
    parser.add_argument("--scene-size", type=int, default=2448)
    parser.add_argument("--size", type=int, default=508, help="global view and patch side")
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    parser.add_argument("--single", choices=MODES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.single:
        print(json.dumps(run_one(args.single, args.device, args.batch_size, args.scene_size,
                                 args.size)))
        return

    import torch

    print(f"# {cpu_name()}, {torch.get_num_threads()} threads, "
          f"torch {torch.__version__}, device {args.device}"
          + (f" ({torch.cuda.get_device_name(args.device)})"
             if args.device.startswith("cuda") else ""))
    print(f"# scene {args.scene_size}^2 px, global view and patches {args.size} px, "
          f"sub-batches of {args.batch_size}, ResNet-50, random weights")
    for mode in args.modes:
        out = subprocess.run(
            [sys.executable, __file__, "--single", mode, "--device", args.device,
             "--batch-size", str(args.batch_size), "--scene-size", str(args.scene_size),
             "--size", str(args.size)],
            check=True, capture_output=True, text=True).stdout
        print(json.loads(out.strip().splitlines()[-1]))


if __name__ == "__main__":
    main()
