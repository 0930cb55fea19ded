"""GLNet's central claim on synthetic scenes: global + local beats either alone.

Trains, briefly and on the CPU, with ResNet-18:

- global-only: stage 1 (G on the downsampled scene);
- local-only: the local branch alone on full-resolution patches;
- GLNet G->L: stage 2 from the global-only model;
- GLNet G<->L: stage 3 from the G->L model;

then scores each on held-out scenes of :mod:`glnet_geo.datasets.synthetic`
(where ``park`` and ``meadow`` differ only by the zone around them and roads
and buildings vanish in the global view) and prints a Table-2-style table:
mIoU, per-class IoU and the peak memory of predicting one scene in each mode.

Peak memory is the growth of the resident set (``VmHWM`` in ``/proc``) of a
fresh process while it predicts one scene, the model already loaded: the
activations and buffers of that mode on the CPU.

Usage::

    python benchmarks/ablation.py            # the default seed and recipe (RESULTS.md)
    python benchmarks/ablation.py --seed 1 --steps-local 40
    # the official code's sum of sub-batch losses against our mean, stage 3 both ways
    python benchmarks/ablation.py --sub-batch 4 --batch-local 2 --batch-bidirectional 2 \
        --reduction sum --global-pass scene batch
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import logging
import multiprocessing
import platform
import tempfile
import warnings
from pathlib import Path

import lightning as L
import numpy as np
import torch
from torch.utils.data import Dataset

from glnet_geo.checkpoint import ModelConfig, Normalization
from glnet_geo.datasets import synthetic
from glnet_geo.datasets.sample import SceneViews
from glnet_geo.models import GLNet, GLNetMode
from glnet_geo.models.stages import Stage
from glnet_geo.training.evaluation import ScoringMode, evaluate, scene_probabilities
from glnet_geo.training.module import (
    GLNetModule,
    GlobalPass,
    LossReduction,
    LossSettings,
    LRSchedule,
)
from glnet_geo.training.trainer import fit_steps

#: Scenes of 128 px seen globally at 64 px (G's logits: one per 8 x 8 pixels) and locally
#: through 32 px patches (L's logits: one per 4 x 4 pixels).
SCENE, GLOBAL, PATCH = 128, 64, 32
#: Feature sizes for that scale: blobs wider than a patch, roads and roofs a few pixels.
PARAMS = synthetic.SceneParams(zone_side=75, blob_radius=(22, 34), blobs_per_zone=(1, 3),
                               road_width=(4, 5), road_spacing=70, building_side=(6, 9),
                               building_spacing=14)
NORMALIZATION = Normalization(255.0, [0.45, 0.5, 0.4], [0.2, 0.2, 0.2])


class Scenes(Dataset):
    """Seeded synthetic scenes, turned into GLNet's views (augmented when training)."""

    def __init__(self, seeds: list[int], augment: bool) -> None:
        self.scenes = [synthetic.generate_scene(SCENE, s, PARAMS) for s in seeds]
        self.views = SceneViews(GLOBAL, PATCH, 0, NORMALIZATION, augment=augment)

    def __len__(self) -> int:
        return len(self.scenes)

    def __getitem__(self, index: int):
        scene = self.scenes[index]
        return self.views(scene.image, scene.label, name=str(index))


def _peak_child(state_path: str, config: dict, mode: str, seed: int, threads: int, queue):
    """In a fresh process: load the model, predict one scene, report the RSS peak growth."""
    torch.set_num_threads(threads)
    cfg = ModelConfig.from_dict(config)
    model = GLNet(cfg.num_classes, cfg.backbone, cfg.in_channels,
                  fixed_global=GLNetMode(mode) is GLNetMode.BIDIRECTIONAL)
    model.load_state_dict(torch.load(state_path, weights_only=True))
    model.eval()
    sample = Scenes([seed], augment=False)[0]
    status = Path("/proc/self/status")
    Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
    before = _kib(status.read_text(), "VmRSS")
    scene_probabilities(model, sample, ScoringMode(GLNetMode(mode)), batch_size=4)
    queue.put((_kib(status.read_text(), "VmHWM") - before) / 1024)


def _kib(text: str, field: str) -> int:
    line = next(line for line in text.splitlines() if line.startswith(field + ":"))
    return int(line.split()[1])


def peak_memory_mb(model: GLNet, config: ModelConfig, mode: GLNetMode, seed: int,
                   threads: int) -> float:
    """Peak resident memory growth (MB) of predicting one test scene in ``mode``."""
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "state.pt")
        torch.save(model.state_dict(), path)
        context = multiprocessing.get_context("spawn")
        queue = context.Queue()
        child = context.Process(target=_peak_child, args=(path, config.to_dict(), mode.value,
                                                          seed, threads, queue))
        child.start()
        value = queue.get(timeout=600)
        child.join()
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train-scenes", type=int, default=48)
    parser.add_argument("--test-scenes", type=int, default=16)
    parser.add_argument("--steps-global", type=int, default=300)
    parser.add_argument("--steps-local", type=int, default=250)
    parser.add_argument("--steps-bidirectional", type=int, default=60)
    parser.add_argument("--batch-global", type=int, default=4)
    parser.add_argument("--lr", type=float, default=5e-4,
                        help="Adam learning rate of both branches (a short schedule from "
                             "random weights; the paper's 1e-4 / 2e-5 assume ImageNet weights "
                             "and long training)")
    parser.add_argument("--gamma", type=float, default=6.0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--sub-batch", type=int, default=(SCENE // PATCH) ** 2,
                        help="patches per forward/backward pass (default: a scene's 16)")
    parser.add_argument("--batch-local", type=int, default=1,
                        help="scenes per step of local-only and G->L")
    parser.add_argument("--batch-bidirectional", type=int, default=1,
                        help="scenes per step of G<->L")
    parser.add_argument("--reduction", choices=[r.value for r in LossReduction],
                        default=LossReduction.MEAN.value,
                        help="mean (ours) or sum (the official code's) of a step's losses")
    parser.add_argument("--global-pass", nargs="+", choices=[g.value for g in GlobalPass],
                        default=[GlobalPass.SCENE.value],
                        help="stage 3's G per scene (ours) or on the batch (official); "
                             "several: one G<->L row each, from the same G->L model")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    L.seed_everything(args.seed, verbose=False)
    train = Scenes([args.seed * 100_000 + i for i in range(args.train_scenes)], augment=True)
    test_seeds = [args.seed * 100_000 + 50_000 + i for i in range(args.test_scenes)]
    test = Scenes(test_seeds, augment=False)
    test_samples = [test[i] for i in range(len(test))]
    config = ModelConfig(class_names=list(synthetic.CLASS_NAMES),
                         class_colors=list(synthetic.CLASS_COLORS), backbone="resnet18",
                         normalization=NORMALIZATION, global_size=GLOBAL, patch_size=PATCH,
                         min_overlap=0, scene_size=SCENE)
    losses = LossSettings(gamma=args.gamma, lr_global=args.lr, lr_local=args.lr,
                          sub_batch_size=args.sub_batch, lr_schedule=LRSchedule.CONSTANT,
                          reduction=LossReduction(args.reduction))

    runs = []
    torch.manual_seed(args.seed)
    glob = GLNetModule(config, Stage.GLOBAL, losses)
    runs.append(("global-only", glob.model, GLNetMode.GLOBAL,
                 fit_steps(glob, train, args.steps_global, args.batch_global), args.steps_global))
    torch.manual_seed(args.seed)
    local = GLNetModule(config, Stage.GLOBAL_TO_LOCAL, losses, mode=GLNetMode.LOCAL)
    runs.append(("local-only", local.model, GLNetMode.LOCAL,
                 fit_steps(local, train, args.steps_local, args.batch_local), args.steps_local))
    torch.manual_seed(args.seed)
    g2l = GLNetModule(config, Stage.GLOBAL_TO_LOCAL, losses, model=copy.deepcopy(glob.model))
    runs.append(("GLNet G->L", g2l.model, GLNetMode.GLOBAL_TO_LOCAL,
                 fit_steps(g2l, train, args.steps_local, args.batch_local), args.steps_local))
    for name in args.global_pass:
        torch.manual_seed(args.seed)
        bi = GLNetModule(config, Stage.LOCAL_TO_GLOBAL,
                         dataclasses.replace(losses, global_pass=GlobalPass(name)),
                         model=copy.deepcopy(g2l.model))
        label = "GLNet G<->L" if len(args.global_pass) == 1 else f"G<->L {name}"
        runs.append((label, bi.model, GLNetMode.BIDIRECTIONAL,
                     fit_steps(bi, train, args.steps_bidirectional, args.batch_bidirectional),
                     args.steps_bidirectional))

    names = list(synthetic.CLASS_NAMES)
    header = (f"{'model':<12} {'mIoU':>5}  " + " ".join(f"{n[:8]:>8}" for n in names)
              + f"  {'peak MB':>7}  {'steps':>5}  {'train s':>7}")
    print(f"synthetic scenes {SCENE} px, global view {GLOBAL} px, patches {PATCH} px, "
          f"ResNet-18, seed {args.seed}, {args.train_scenes} training / {args.test_scenes} "
          f"test scenes, lr {args.lr:g}, focal gamma {args.gamma:g}, "
          f"{args.reduction} of sub-batches of {args.sub_batch}, scenes per step "
          f"{args.batch_global}/{args.batch_local}/{args.batch_bidirectional}, "
          f"{torch.get_num_threads()} thread(s), {platform.processor() or platform.machine()}")
    print(header)
    for name, model, mode, seconds, steps in runs:
        scores = evaluate(model, config, test_samples, ScoringMode(mode))
        memory = peak_memory_mb(model, config, mode, test_seeds[0], args.threads)
        cells = " ".join(f"{100 * v:8.1f}" for v in np.nan_to_num(scores.iou))
        print(f"{name:<12} {100 * scores.miou:5.1f}  {cells}  {memory:7.1f}  {steps:>5}  "
              f"{seconds:7.0f}", flush=True)


if __name__ == "__main__":
    main()
