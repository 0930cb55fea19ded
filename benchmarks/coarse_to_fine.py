"""Coarse-to-fine GLNet and global-guided patch skipping on sparse buildings.

The paper's coarse-to-fine variant (section 3.3) is meant for binary targets
with a small foreground: G segments the scene coarsely and only the region
around G's foreground goes through the local branch L. This benchmark measures
what that saves, and what it costs in accuracy, on the seeded sparse building
scenes of :func:`glnet_geo.datasets.synthetic.generate_sparse_scene`
(buildings of 6 to 9 px covering about 7 % of the area, packed in a few compact
villages; most of each raster is fields, forest and roads).

Trains, briefly and on the CPU, with ResNet-18 and the recipe of
``benchmarks/ablation.py`` (128 px scenes, 64 px global view, 32 px patches):

- stage 1, the global branch G;
- (a) plain G->L: stage 2 from that G on all 16 patches of each scene;
- (b) G->L trained on coarse-to-fine crops (the patches around the labels'
  foreground regions), from the same G.

Then writes held-out sparse rasters as GeoTIFFs (UTM zone 31N, 0.5 m pixels)
and predicts them as ``glnet-geo predict`` does
(:func:`glnet_geo.predict.predict_raster`, class COG with overviews
written), one row per way of predicting:

- full GLNet: model (a), every patch through L;
- patch skipping: model (a), L skips the patches where G is more confident
  than a threshold of one class everywhere (``skip_threshold``);
- coarse-to-fine: model (a), then model (b), L only on the patches that touch
  a relaxed foreground region of G's prediction (``mode="coarse-to-fine"``).

For each row it prints the prediction time (the checkpoint loaded once; per
raster the best of ``--repeats`` runs, summed over the rasters), the time
relative to full GLNet, the building IoU and mIoU of the written class rasters
against the labels (all rasters' pixels pooled) and the share of patches the
local branch ran on (counted on the model's ``iter_scene`` calls).

Usage::

    python benchmarks/coarse_to_fine.py            # the full recipe (RESULTS.md)
    python benchmarks/coarse_to_fine.py --steps-global 2 --steps-local 2 \\
        --train-scenes 4 --rasters 1 --raster-size 256 --repeats 1   # smoke run
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import logging
import os
import platform
import tempfile
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import lightning as L
import numpy as np
import rasterio
import torch
from affine import Affine
from torch.utils.data import Dataset

from glnet_geo.checkpoint import (
    Checkpoint,
    ModelConfig,
    Normalization,
    load_checkpoint,
    save_checkpoint,
)
from glnet_geo.datasets import synthetic
from glnet_geo.datasets.sample import SceneViews
from glnet_geo.metrics import ConfusionMatrix, SegmentationScores, scores
from glnet_geo.models import GLNet
from glnet_geo.models.stages import Stage
from glnet_geo.predict import PredictMode, predict_raster
from glnet_geo.training.module import GLNetModule, LossSettings, LRSchedule
from glnet_geo.training.trainer import fit_steps

#: The ablation recipe's sizes: 128 px scenes seen globally at 64 px (G's logits: one per
#: 8 x 8 pixels) and locally through 32 px patches (L's logits: one per 4 x 4 pixels).
SCENE, GLOBAL, PATCH = 128, 64, 32
#: The sparse scenes' defaults are sized for that scale (roofs of 6 to 9 px).
PARAMS = synthetic.SparseSceneParams()
NORMALIZATION = Normalization(255.0, [0.45, 0.5, 0.4], [0.2, 0.2, 0.2])
#: The held-out rasters' map grid: UTM zone 31N, 0.5 m pixels.
CRS, PIXEL_SIZE = "EPSG:32631", 0.5
BUILDING = synthetic.SPARSE_CLASS_NAMES[synthetic.SPARSE_BUILDING]


class Scenes(Dataset):
    """Seeded sparse building scenes of 128 px as GLNet's views (augmented)."""

    def __init__(self, seeds: list[int]) -> None:
        self.scenes = [synthetic.generate_sparse_scene(SCENE, s, PARAMS) for s in seeds]
        self.views = SceneViews(GLOBAL, PATCH, 0, NORMALIZATION, augment=True)

    def __len__(self) -> int:
        return len(self.scenes)

    def __getitem__(self, index: int):
        scene = self.scenes[index]
        return self.views(scene.image, scene.label, name=str(index))


@dataclass(frozen=True)
class Row:
    """One way of predicting: the model it uses and the options of ``predict_raster``."""

    name: str
    model: str
    mode: PredictMode
    skip_threshold: float | None = None


@dataclass
class Measure:
    """What one row gave over all rasters."""

    seconds: float
    scores: SegmentationScores
    patches: int


class PatchCounter:
    """Count the patches a model's local branch runs on (its ``iter_scene`` calls' boxes)."""

    def __init__(self, model: GLNet) -> None:
        self.count = 0
        inner = model.iter_scene

        def counted(global_image, boxes, *args, **kwargs) -> Iterator:
            self.count += len(boxes)
            return inner(global_image, boxes, *args, **kwargs)

        model.iter_scene = counted


@dataclass
class HeldOut:
    """A held-out raster on disk and its labels in memory."""

    path: Path
    label: np.ndarray


def write_rasters(folder: Path, seeds: list[int], size: int) -> list[HeldOut]:
    """Write one sparse scene per seed as a georeferenced GeoTIFF (labels kept in memory)."""
    rasters = []
    for i, seed in enumerate(seeds):
        scene = synthetic.generate_sparse_scene(size, seed, PARAMS)
        path = folder / f"sparse_{i:02d}.tif"
        transform = Affine(PIXEL_SIZE, 0, 431000 + i * size * PIXEL_SIZE, 0, -PIXEL_SIZE,
                           5412000)
        synthetic.write_scene(scene, path, crs=CRS, transform=transform)
        rasters.append(HeldOut(path, scene.label))
    return rasters


def measure(row: Row, checkpoint: Checkpoint, counter: PatchCounter, rasters: list[HeldOut],
            output: Path, repeats: int, batch_size: int) -> Measure:
    """Predict every raster ``repeats`` times in ``row``'s way; time, score and count patches."""
    confusion = ConfusionMatrix(len(synthetic.SPARSE_CLASS_NAMES))
    seconds, patches = 0.0, 0
    for raster in rasters:
        out = output / f"{raster.path.stem}.tif"
        best = np.inf
        for repeat in range(repeats):
            before = counter.count
            start = time.perf_counter()
            predict_raster(checkpoint, raster.path, out, mode=row.mode,
                           skip_threshold=row.skip_threshold, device="cpu",
                           batch_size=batch_size, progress=False, overwrite=True)
            best = min(best, time.perf_counter() - start)
            if repeat == 0:
                patches += counter.count - before
        seconds += best
        with rasterio.open(out) as src:
            confusion.update(torch.from_numpy(src.read(1)), torch.from_numpy(raster.label))
    return Measure(seconds, scores(confusion, list(synthetic.SPARSE_CLASS_NAMES)), patches)


def rows(thresholds: list[float]) -> list[Row]:
    """The ways of predicting, full GLNet first."""
    return [Row("full GLNet (a)", "a", PredictMode.GLNET),
            *(Row(f"skip T={t:g} (a)", "a", PredictMode.GLNET, t) for t in thresholds),
            Row("coarse-to-fine (a)", "a", PredictMode.COARSE_TO_FINE),
            Row("coarse-to-fine (b)", "b", PredictMode.COARSE_TO_FINE)]


def tiles_without_building(label: np.ndarray, side: int) -> float:
    """Share of the ``side`` x ``side`` tiles of ``label`` that hold no building pixel."""
    h, w = (label.shape[0] // side) * side, (label.shape[1] // side) * side
    tiles = label[:h, :w].reshape(h // side, side, w // side, side)
    return float((tiles.max((1, 3)) == 0).mean())


def train_models(config: ModelConfig, losses: LossSettings, train: Scenes,
                 args: argparse.Namespace) -> dict[str, GLNet]:
    """Train stage 1, then (a) plain G->L and (b) G->L on coarse-to-fine crops from it."""
    torch.manual_seed(args.seed)
    stage1 = GLNetModule(config, Stage.GLOBAL, losses)
    seconds = fit_steps(stage1, train, args.steps_global, args.batch_global)
    print(f"stage 1 (G): {args.steps_global} steps of {args.batch_global} scenes, "
          f"{seconds:.0f} s", flush=True)
    torch.manual_seed(args.seed)
    plain = GLNetModule(config, Stage.GLOBAL_TO_LOCAL, losses, model=copy.deepcopy(stage1.model))
    seconds = fit_steps(plain, train, args.steps_local, 1)
    print(f"(a) G->L: {args.steps_local} steps, {seconds:.0f} s", flush=True)
    torch.manual_seed(args.seed)
    crops = GLNetModule(config, Stage.GLOBAL_TO_LOCAL, losses,
                        model=copy.deepcopy(stage1.model), coarse_to_fine=True)
    seconds = fit_steps(crops, train, args.steps_local, 1)
    print(f"(b) G->L on coarse-to-fine crops: {args.steps_local} steps, {seconds:.0f} s",
          flush=True)
    return {"a": plain.model, "b": crops.model}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train-scenes", type=int, default=48)
    parser.add_argument("--steps-global", type=int, default=300)
    parser.add_argument("--steps-local", type=int, default=250)
    parser.add_argument("--batch-global", type=int, default=4)
    parser.add_argument("--lr", type=float, default=5e-4,
                        help="Adam learning rate of both branches (the ablation recipe)")
    parser.add_argument("--gamma", type=float, default=6.0)
    parser.add_argument("--rasters", type=int, default=4, help="held-out rasters")
    parser.add_argument("--raster-size", type=int, default=1024, help="their side in pixels")
    parser.add_argument("--thresholds", type=float, nargs="*", default=[0.55, 0.65, 0.75],
                        help="patch-skipping thresholds, one row each")
    parser.add_argument("--repeats", type=int, default=2, help="timed runs per raster (best)")
    parser.add_argument("--batch-size", type=int, default=16, help="patches per forward pass")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--checkpoints", type=Path, metavar="DIR",
                        help="keep the two trained checkpoints here; if they are there already, "
                             "predict with them instead of training (e.g. to try thresholds)")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    L.seed_everything(args.seed, verbose=False)
    train = Scenes([args.seed * 100_000 + i for i in range(args.train_scenes)])
    train_config = ModelConfig(class_names=list(synthetic.SPARSE_CLASS_NAMES),
                               class_colors=list(synthetic.SPARSE_CLASS_COLORS),
                               backbone="resnet18", normalization=NORMALIZATION,
                               global_size=GLOBAL, patch_size=PATCH, min_overlap=0,
                               scene_size=SCENE)
    losses = LossSettings(gamma=args.gamma, lr_global=args.lr, lr_local=args.lr,
                          sub_batch_size=(SCENE // PATCH) ** 2,
                          lr_schedule=LRSchedule.CONSTANT)

    print(f"sparse building scenes: {SCENE} px training scenes, global view {GLOBAL} px, "
          f"patches {PATCH} px, ResNet-18, seed {args.seed}, {args.train_scenes} training "
          f"scenes, lr {args.lr:g}, focal gamma {args.gamma:g}")
    print(f"machine: {platform.platform()}, {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs, torch {torch.__version__}, {torch.get_num_threads()} "
          "torch thread(s)")
    fraction = np.mean([(s.label == synthetic.SPARSE_BUILDING).mean() for s in train.scenes])
    print(f"training scenes: buildings {100 * fraction:.1f} % of the pixels, "
          f"{100 * np.mean([s.label.max() == 0 for s in train.scenes]):.0f} % of the scenes "
          "without any", flush=True)

    config = dataclasses.replace(train_config, stage=Stage.GLOBAL_TO_LOCAL)
    configs = {"a": config, "b": dataclasses.replace(config, coarse_to_fine=True)}
    kept = {name: args.checkpoints / f"model_{name}.pt" for name in configs} \
        if args.checkpoints else {}
    if kept and all(path.exists() for path in kept.values()):
        print(f"models (a) and (b) from {args.checkpoints} (no training)")
        models = {name: load_checkpoint(path).model for name, path in kept.items()}
    else:
        models = train_models(train_config, losses, train, args)

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        seeds = [args.seed * 100_000 + 90_000 + i for i in range(args.rasters)]
        rasters = write_rasters(folder, seeds, args.raster_size)
        labels = np.stack([r.label for r in rasters])
        empty = {side: 100 * np.mean([tiles_without_building(r.label, side) for r in rasters])
                 for side in (SCENE, PATCH)}
        print(f"held-out rasters: {args.rasters} of {args.raster_size} x {args.raster_size} px "
              f"(seeds {seeds[0]}..{seeds[-1]}), buildings {100 * labels.mean():.1f} % of the "
              f"pixels, {empty[SCENE]:.0f} % of the {SCENE} px scenes and {empty[PATCH]:.0f} % "
              f"of the {PATCH} px patches without any; {args.repeats} timed run(s) per raster, "
              f"batch size {args.batch_size}")
        checkpoints, counters = {}, {}
        for name, model in models.items():
            path = save_checkpoint(kept.get(name, folder / f"model_{name}.pt"), model.eval(),
                                   configs[name], overwrite=True)
            checkpoints[name] = load_checkpoint(path, device="cpu")
            counters[name] = PatchCounter(checkpoints[name].model)
        (folder / "out").mkdir()
        print(f"{'prediction':<20} {'seconds':>8} {'relative':>8} {'building IoU':>12} "
              f"{'mIoU':>5} {'L patches':>9}")
        full: Measure | None = None
        for row in rows(args.thresholds):
            result = measure(row, checkpoints[row.model], counters[row.model], rasters,
                             folder / "out", args.repeats, args.batch_size)
            full = full or result
            iou = result.scores.class_iou(BUILDING)  # NaN: no building predicted nor labelled
            print(f"{row.name:<20} {result.seconds:8.1f} {result.seconds / full.seconds:8.2f} "
                  f"{'-' if np.isnan(iou) else f'{100 * iou:.1f}':>12} "
                  f"{100 * result.scores.miou:5.1f} "
                  f"{100 * result.patches / max(full.patches, 1):8.0f}%", flush=True)


if __name__ == "__main__":
    main()
