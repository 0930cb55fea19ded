"""Our evaluation protocol against the official GLNet evaluator's, on the same network.

Trains a small ResNet-18 GLNet briefly on the CPU (stage 1, then G->L, with the recipe of
``ablation.py`` at fewer steps) and scores the same held-out synthetic scenes with both
protocols of :mod:`glnet_geo.training.evaluation`:

- ``ours``: logits upsampled bilinearly, softmax, patches blended with tent weights; the
  ignored class left out of the matrix, absent classes left out of the mean;
- ``official``: logits upsampled x4 with nearest and summed over overlapping patches (G's
  logits with nearest to the scene size), argmax; the ignored class kept in the matrix and
  the mean IoU taken over the other classes (absent ones count as 0).

Each model is scored twice: with no ignored class (only the prediction differs, plus the
absent-class rule) and with ``building`` playing DeepGlobe's ``unknown`` (ignored), which
adds the difference in scoring. The pixel agreement of the two protocols' class maps is
printed too.

Usage::

    python benchmarks/protocols.py               # the defaults of RESULTS.md
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import logging
import warnings

import lightning as L
import torch
from ablation import GLOBAL, NORMALIZATION, PATCH, SCENE, Scenes

from glnet_geo.checkpoint import ModelConfig
from glnet_geo.datasets import synthetic
from glnet_geo.models import GLNetMode
from glnet_geo.models.stages import Stage
from glnet_geo.training.evaluation import (
    ScoringMode,
    evaluate,
    official_scene_classes,
    scene_probabilities,
)
from glnet_geo.training.module import GLNetModule, LossSettings, LRSchedule
from glnet_geo.training.trainer import fit_steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train-scenes", type=int, default=16)
    parser.add_argument("--test-scenes", type=int, default=8)
    parser.add_argument("--steps-global", type=int, default=40)
    parser.add_argument("--steps-local", type=int, default=30)
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--overlap", type=int, default=8,
                        help="Minimum patch overlap in px (the protocols blend overlaps "
                             "differently)")
    args = parser.parse_args()

    torch.set_num_threads(1)
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    L.seed_everything(args.seed, verbose=False)
    train = Scenes([args.seed * 100_000 + i for i in range(args.train_scenes)], augment=True)
    test = Scenes([args.seed * 100_000 + 50_000 + i for i in range(args.test_scenes)],
                  augment=False)
    test.views = dataclasses.replace(test.views, min_overlap=args.overlap)
    samples = [test[i] for i in range(len(test))]
    config = ModelConfig(class_names=list(synthetic.CLASS_NAMES), backbone="resnet18",
                         normalization=NORMALIZATION, global_size=GLOBAL, patch_size=PATCH,
                         min_overlap=args.overlap, scene_size=SCENE)
    losses = LossSettings(lr_global=args.lr, lr_local=args.lr,
                          sub_batch_size=(SCENE // PATCH) ** 2, lr_schedule=LRSchedule.CONSTANT)
    torch.manual_seed(args.seed)
    glob = GLNetModule(config, Stage.GLOBAL, losses)
    fit_steps(glob, train, args.steps_global, 4)
    torch.manual_seed(args.seed)
    g2l = GLNetModule(config, Stage.GLOBAL_TO_LOCAL, losses, model=copy.deepcopy(glob.model))
    fit_steps(g2l, train, args.steps_local, 1)

    ignored = synthetic.CLASS_NAMES.index("building")
    print(f"synthetic scenes {SCENE} px, global {GLOBAL} px, patches {PATCH} px (overlap >= "
          f"{args.overlap} px), ResNet-18, seed {args.seed}, {args.train_scenes} training / "
          f"{args.test_scenes} test scenes, {args.steps_global} + {args.steps_local} steps")
    print("| model | ignored class | mIoU ours | mIoU official | difference | same class |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    for name, model, mode in (("global-only", glob.model, GLNetMode.GLOBAL),
                              ("GLNet G->L", g2l.model, GLNetMode.GLOBAL_TO_LOCAL)):
        model.eval()
        scoring = ScoringMode(mode)
        agree = sum(float((official_scene_classes(model, s, scoring, 4)
                           == scene_probabilities(model, s, scoring, 4).argmax(0))
                          .float().mean()) for s in samples) / len(samples)
        for ignore in (None, ignored):
            cfg = dataclasses.replace(config, ignore_index=ignore)
            ours = evaluate(model, cfg, samples, scoring, 4)
            official = evaluate(model, cfg, samples, scoring, 4, protocol="official")
            label = "none" if ignore is None else synthetic.CLASS_NAMES[ignore]
            print(f"| {name} | {label} | {100 * ours.miou:.1f} | {100 * official.miou:.1f} | "
                  f"{100 * (official.miou - ours.miou):+.1f} | {100 * agree:.1f}% |", flush=True)


if __name__ == "__main__":
    main()
