"""The end-to-end demo behind ``make demo`` / ``glnet-geo demo``.

In a few minutes on a CPU it shows the whole mission on a scene that needs
both of GLNet's branches (:mod:`glnet_geo.datasets.synthetic`: ``park`` and
``meadow`` look alike and differ only by the zone around them, roads and
roofs vanish in the downsampled view):

1. writes a seeded sample scene as a georeferenced GeoTIFF (UTM zone 31N,
   0.5 m pixels) with its label raster: the same seed gives the same scene
   on every machine, so nothing large ships with the project;
2. trains a small ResNet-18 GLNet on other seeded scenes: the global branch
   (stage 1); a local branch alone, the local-only model of the paper's
   Table 2; then stage 2, global->local sharing, with L starting from the
   local-only model (:mod:`glnet_geo.models.warm_start`: without ImageNet
   weights that is what lets stage 2 fit in a minute or two of CPU);
3. predicts the sample scene as ``glnet-geo predict`` does
   (:func:`glnet_geo.predict.predict_raster`): the class COG, the polygons
   (GeoPackage) and the preview PNG;
4. scores global-only, local-only and GLNet on the sample scene against its
   labels, each predicted scene by scene exactly as ``predict`` does, and
   writes the scores as JSON.

Output folder::

    sample/scene.tif  sample/labels.tif   the sample scene and its labels
    glnet.pt          local-only.pt       the checkpoints (G->L; L alone)
    classes.tif       classes.gpkg        GLNet's class COG and polygons
    preview.png       evaluation.json     quick look; mIoU of the three models
"""

from __future__ import annotations

import copy
import dataclasses
import json
import logging
import os
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import rasterio
import torch
from affine import Affine
from torch.utils.data import Dataset

from glnet_geo.checkpoint import ModelConfig, save_checkpoint
from glnet_geo.datasets import synthetic
from glnet_geo.datasets.sample import SceneSample, SceneViews
from glnet_geo.errors import InputError, OutputExistsError
from glnet_geo.io.reader import Normalization, RasterInput
from glnet_geo.io.scenes import default_halo, scene_grid
from glnet_geo.metrics import ConfusionMatrix, SegmentationScores, scores
from glnet_geo.models import GLNet, GLNetMode
from glnet_geo.models.stages import Stage
from glnet_geo.models.warm_start import start_local_from
from glnet_geo.precision import Precision, resolve_precision
from glnet_geo.predict import PredictMode, SceneSettings, predict_raster
from glnet_geo.predict.blending import predict_scene
from glnet_geo.predict.settings import CHANNELS_LAST
from glnet_geo.training.module import GLNetModule, LossSettings, LRSchedule
from glnet_geo.training.trainer import fit_steps

log = logging.getLogger(__name__)

#: GLNet's sizes in the demo: scenes of 128 px seen whole at 64 px (one global logit per
#: 8 x 8 pixels) and through 32 px patches (one local logit per 4 x 4 pixels).
SCENE_SIZE, GLOBAL_SIZE, PATCH_SIZE = 128, 64, 32
#: Feature sizes of the synthetic scenes at that scale: look-alike blobs wider than a
#: patch, roads and roofs a few pixels wide (those of ``benchmarks/ablation.py``).
SCENE_PARAMS = synthetic.SceneParams(zone_side=75, blob_radius=(22, 34), blobs_per_zone=(1, 3),
                                     road_width=(4, 5), road_spacing=70, building_side=(6, 9),
                                     building_spacing=14)
NORMALIZATION = Normalization(255.0, [0.45, 0.5, 0.4], [0.2, 0.2, 0.2])
#: The sample scene's map grid: UTM zone 31N, 0.5 m pixels.
CRS = "EPSG:32631"
PIXEL_SIZE = 0.5
#: Seeds of the sample scene and of the first training scene (kept apart).
SAMPLE_SEED = 20190616
TRAIN_SEED = 0


@dataclass(frozen=True)
class DemoSettings:
    """How big the demo is; the defaults finish in minutes on two CPU cores.

    Attributes:
        sample_size: Side of the sample scene in pixels.
        train_scenes: Number of 128 px training scenes.
        steps_global: Optimizer steps of stage 1 (G).
        steps_local: Optimizer steps of the local-only model (L alone).
        steps_sharing: Optimizer steps of stage 2 (G->L), which starts from the
            local-only model's L.
        batch_global: Scenes per step in stage 1 (the local models take one scene a
            step).
        lr: Adam learning rate of both branches, constant (a short schedule from random
            weights; the paper's 1e-4 / 2e-5 assume ImageNet weights).
        gamma: Focal loss focusing parameter.
        seed: Seed of the weights and of the training order.
        precision: What the network computes in when it predicts and scores
            (:class:`~glnet_geo.precision.Precision`).

    """

    sample_size: int = 1536
    train_scenes: int = 48
    steps_global: int = 300
    steps_local: int = 250
    steps_sharing: int = 60
    batch_global: int = 4
    lr: float = 5e-4
    gamma: float = 6.0
    seed: int = 0
    precision: str = Precision.AUTO.value


#: The three rows of the demo's table: (name, checkpoint file, network mode).
ROWS: tuple[tuple[str, str, GLNetMode], ...] = (
    ("global-only", "glnet.pt", GLNetMode.GLOBAL),
    ("local-only", "local-only.pt", GLNetMode.LOCAL),
    ("GLNet (G->L)", "glnet.pt", GLNetMode.GLOBAL_TO_LOCAL),
)


@dataclass
class DemoResult:
    """What the demo wrote and measured.

    Attributes:
        output: The output folder.
        files: What each output is -> its path.
        scores: Row name -> scores on the sample scene.
        seconds: Step name -> wall-clock seconds.

    """

    output: Path
    files: dict[str, Path] = field(default_factory=dict)
    scores: dict[str, SegmentationScores] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)

    def table(self) -> str:
        """Format the mIoU table (per-class IoU too), one row per model."""
        names = next(iter(self.scores.values())).class_names
        lines = [f"{'model':<13} {'mIoU':>5}  " + " ".join(f"{n[:8]:>8}" for n in names)]
        for row, score in self.scores.items():
            cells = " ".join("       -" if np.isnan(v) else f"{100 * v:8.1f}" for v in score.iou)
            lines.append(f"{row:<13} {100 * score.miou:5.1f}  {cells}")
        return "\n".join(lines)


class TrainingScenes(Dataset):
    """Seeded 128 px synthetic scenes as GLNet's views (augmented)."""

    def __init__(self, seeds: list[int]) -> None:
        self.scenes = [synthetic.generate_scene(SCENE_SIZE, s, SCENE_PARAMS) for s in seeds]
        self.views = SceneViews(GLOBAL_SIZE, PATCH_SIZE, 0, NORMALIZATION, augment=True)

    def __len__(self) -> int:
        return len(self.scenes)

    def __getitem__(self, index: int) -> SceneSample:
        scene = self.scenes[index]
        return self.views(scene.image, scene.label, name=f"scene {index}")


def model_config() -> ModelConfig:
    """Return the configuration of the demo's models (classes, sizes, normalisation)."""
    return ModelConfig(class_names=list(synthetic.CLASS_NAMES),
                       class_colors=list(synthetic.CLASS_COLORS), backbone="resnet18",
                       normalization=NORMALIZATION, global_size=GLOBAL_SIZE,
                       patch_size=PATCH_SIZE, min_overlap=0, scene_size=SCENE_SIZE,
                       stage=Stage.GLOBAL_TO_LOCAL)


def write_sample_scene(image: str | os.PathLike, labels: str | os.PathLike,
                       size: int = 1536, seed: int = SAMPLE_SEED) -> None:
    """Write the seeded sample scene and its labels as GeoTIFFs in UTM zone 31N.

    Args:
        image: Destination of the RGB image.
        labels: Destination of the class raster (palette, class names).
        size: Side in pixels.
        seed: Seed of the scene.

    """
    scene = synthetic.generate_scene(size, seed, SCENE_PARAMS)
    transform = Affine(PIXEL_SIZE, 0, 431000, 0, -PIXEL_SIZE, 5412000)  # near Mulhouse
    synthetic.write_scene(scene, image, labels, crs=CRS, transform=transform)


def train_models(settings: DemoSettings, echo: Callable[[str], None] = print
                 ) -> tuple[GLNet, GLNet]:
    """Train GLNet's G (stage 1), the local-only model, then G->L from both.

    Returns:
        The G->L GLNet (its G is the stage-1 model: stage 2 keeps G frozen;
        its L started from the local-only model's) and the local-only model
        (L trained alone, mode ``LOCAL``).

    """
    import lightning as L

    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module="lightning")
    L.seed_everything(settings.seed, verbose=False)
    data = TrainingScenes([TRAIN_SEED + i for i in range(settings.train_scenes)])
    config = model_config()
    losses = LossSettings(gamma=settings.gamma, lr_global=settings.lr, lr_local=settings.lr,
                          sub_batch_size=(SCENE_SIZE // PATCH_SIZE) ** 2,
                          lr_schedule=LRSchedule.CONSTANT)
    echo(f"  stage 1, global branch: {settings.steps_global} steps")
    torch.manual_seed(settings.seed)
    stage1 = GLNetModule(config, Stage.GLOBAL, losses)
    fit_steps(stage1, data, settings.steps_global, settings.batch_global)
    echo(f"  local branch alone (the local-only model): {settings.steps_local} steps")
    torch.manual_seed(settings.seed)
    local = GLNetModule(config, Stage.GLOBAL_TO_LOCAL, losses, mode=GLNetMode.LOCAL)
    fit_steps(local, data, settings.steps_local, 1)
    echo(f"  stage 2, global->local, L starting from the local-only model: "
         f"{settings.steps_sharing} steps")
    torch.manual_seed(settings.seed)
    start_local_from(stage1.model, local.model)
    stage2 = GLNetModule(config, Stage.GLOBAL_TO_LOCAL, losses, model=stage1.model)
    fit_steps(stage2, data, settings.steps_sharing, 1)
    return stage2.model.eval(), local.model.eval()


def score_raster(model: GLNet, config: ModelConfig, mode: GLNetMode,
                 image: str | os.PathLike, labels: str | os.PathLike,
                 batch_size: int = 16, precision: Precision | str = Precision.AUTO
                 ) -> SegmentationScores:
    """Predict ``image`` scene by scene, as ``glnet-geo predict`` does, and score it.

    Unlike :func:`~glnet_geo.predict.predict_raster` this runs any
    :class:`~glnet_geo.models.GLNetMode` (the local-only ablation included)
    and writes nothing: each scene's classes go straight into a confusion
    matrix against the matching window of ``labels``.

    Args:
        model: The network (eval mode, CPU).
        config: Its configuration.
        mode: The mode it runs in.
        image: The raster to predict.
        labels: Its class raster on the same grid.
        batch_size: Patches per forward pass.
        precision: What the network computes in (a copy of ``model`` is
            prepared for it; ``model`` is left as it is).

    Returns:
        mIoU, per-class IoU and the confusion matrix.

    """
    dtype = resolve_precision(precision, "cpu").dtype
    model = copy.deepcopy(model).eval().for_inference(dtype, channels_last=CHANNELS_LAST)
    settings = SceneSettings(mode=PredictMode.GLNET, network_mode=mode,
                             global_size=config.global_size, patch_size=config.patch_size,
                             min_overlap=config.min_overlap, batch_size=batch_size)
    confusion = ConfusionMatrix(config.num_classes, config.ignore_index)
    with RasterInput.open(image, config.bands, config.normalization) as raster, \
            rasterio.open(labels) as truth:
        for scene in scene_grid(raster.height, raster.width, config.scene_size,
                                default_halo(config.patch_size)):
            predicted = predict_scene(model, raster, scene, settings)
            confusion.update(torch.from_numpy(predicted.classes),
                             torch.from_numpy(truth.read(1, window=scene.core)))
    return scores(confusion, config.class_names, config.ignore_index)


def score_classes(classes: str | os.PathLike, labels: str | os.PathLike,
                  class_names: list[str]) -> SegmentationScores:
    """Score a predicted class raster against a label raster on the same grid."""
    confusion = ConfusionMatrix(len(class_names))
    with rasterio.open(classes) as predicted, rasterio.open(labels) as truth:
        for _, window in predicted.block_windows(1):
            confusion.update(torch.from_numpy(predicted.read(1, window=window)),
                             torch.from_numpy(truth.read(1, window=window)))
    return scores(confusion, class_names)


def _check_output(output: Path, overwrite: bool) -> None:
    if output.exists() and not output.is_dir():
        raise InputError(f"demo output {output} is a file; give a folder (-o DIR)")
    if output.is_dir() and any(output.iterdir()) and not overwrite:
        raise OutputExistsError(f"demo output folder {output} is not empty; pass --overwrite "
                                "to replace its files or choose another folder")


def run_demo(output: str | os.PathLike = "demo-output", settings: DemoSettings | None = None,
             overwrite: bool = False, echo: Callable[[str], None] = print) -> DemoResult:
    """Run the demo: sample scene, training, prediction, polygons, preview, scores.

    Args:
        output: Folder of the outputs (created).
        settings: Sizes and steps (default: :class:`DemoSettings`).
        overwrite: Replace the files of an earlier run in ``output``.
        echo: Where progress lines go.

    Returns:
        The files written, the scores and the time of each step.

    Raises:
        OutputExistsError: ``output`` holds files and ``overwrite`` is false.
        InputError: ``output`` is a file, a sample smaller than one scene, or a
            precision this CPU cannot run.

    """
    settings = settings or DemoSettings()
    output = Path(output)
    _check_output(output, overwrite)
    resolve_precision(settings.precision, "cpu")  # before any training
    if settings.sample_size < SCENE_SIZE:
        raise InputError(f"sample size {settings.sample_size} px is smaller than one scene "
                         f"({SCENE_SIZE} px); use at least {SCENE_SIZE}")
    (output / "sample").mkdir(parents=True, exist_ok=True)
    result = DemoResult(output=output)
    files = result.files
    files["sample scene (input)"] = output / "sample" / "scene.tif"
    files["sample labels (truth)"] = output / "sample" / "labels.tif"

    def timed(step: str, start: float) -> None:
        result.seconds[step] = round(time.perf_counter() - start, 1)

    start = time.perf_counter()
    echo(f"1/4 writing the sample scene ({settings.sample_size} x {settings.sample_size} px, "
         f"{CRS}, {PIXEL_SIZE} m pixels)")
    write_sample_scene(files["sample scene (input)"], files["sample labels (truth)"],
                       settings.sample_size)
    timed("sample scene", start)

    start = time.perf_counter()
    echo(f"2/4 training a ResNet-18 GLNet on {settings.train_scenes} scenes of {SCENE_SIZE} px "
         f"(global view {GLOBAL_SIZE} px, patches {PATCH_SIZE} px) on the CPU")
    glnet, local = train_models(settings, echo)
    config = model_config()
    files["GLNet checkpoint (G->L)"] = save_checkpoint(output / "glnet.pt", glnet, config,
                                                       overwrite=True)
    files["local-only checkpoint"] = save_checkpoint(output / "local-only.pt", local, config,
                                                     overwrite=True)
    timed("training", start)

    start = time.perf_counter()
    checkpoint = files["GLNet checkpoint (G->L)"]
    echo(f"3/4 glnet-geo predict {checkpoint} {files['sample scene (input)']} "
         f"-o {output / 'classes.tif'} --polygons {output / 'classes.gpkg'} "
         f"--preview {output / 'preview.png'}")
    predicted = predict_raster(checkpoint, files["sample scene (input)"], output / "classes.tif",
                               polygons=output / "classes.gpkg",
                               preview=output / "preview.png", device="cpu", batch_size=16,
                               precision=settings.precision, overwrite=True, progress=False)
    files["class raster (COG)"] = predicted.classes
    files["polygons (GeoPackage)"] = predicted.polygons
    files["preview (PNG)"] = predicted.preview
    timed("predict", start)

    start = time.perf_counter()
    echo("4/4 scoring global-only, local-only and GLNet on the sample scene")
    models = {"glnet.pt": glnet, "local-only.pt": local}
    for row, name, mode in ROWS:
        if mode is GLNetMode.GLOBAL_TO_LOCAL:  # what predict wrote
            result.scores[row] = score_classes(predicted.classes, files["sample labels (truth)"],
                                               config.class_names)
        else:
            result.scores[row] = score_raster(models[name], config, mode,
                                              files["sample scene (input)"],
                                              files["sample labels (truth)"],
                                              precision=settings.precision)
    timed("scoring", start)
    files["evaluation (JSON)"] = _write_evaluation(output / "evaluation.json", result, settings)
    return result


def _write_evaluation(path: Path, result: DemoResult, settings: DemoSettings) -> Path:
    """Write the scores, the settings and the timings as JSON (atomically)."""
    document = {
        "sample": {"path": "sample/scene.tif", "labels": "sample/labels.tif",
                   "size_px": settings.sample_size, "crs": CRS, "pixel_size_m": PIXEL_SIZE},
        "settings": dataclasses.asdict(settings),
        "models": {row: {"checkpoint": name, "mode": mode.value}
                   for row, name, mode in ROWS},
        "scores": {row: score.to_dict() for row, score in result.scores.items()},
        "seconds": result.seconds,
    }
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(json.dumps(document, indent=1) + "\n")
    os.replace(partial, path)
    return path


__all__ = ["DemoResult", "DemoSettings", "run_demo", "score_classes", "score_raster",
           "train_models", "write_sample_scene"]
