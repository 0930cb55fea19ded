"""How a prediction runs: modes, devices, precision, sub-batches and scene sizes.

Plain data that travels to Dask workers (:class:`SceneSettings`), the options
of a whole run (:class:`PredictOptions`), and the checks and resolutions done
before any model runs: the device (:func:`resolve_device`), the scene size
(:func:`check_scene_size`), and the checkpoint prepared for the device and
precision (:func:`prepare_checkpoint`).
"""

from __future__ import annotations

import copy
import dataclasses
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

import torch
from rasterio.windows import Window

from glnet_geo.checkpoint import Checkpoint, ModelConfig, load_checkpoint
from glnet_geo.errors import InputError, parse_choice
from glnet_geo.io.grid import patch_windows
from glnet_geo.io.scenes import Scene, default_halo
from glnet_geo.io.writer import check_creation_options
from glnet_geo.models import GLNetMode
from glnet_geo.models.stages import Stage
from glnet_geo.precision import Precision, resolve_precision

#: Network modes where a G runs before the patches, so its prediction can guide them
#: (in G<->L the frozen stage-1 copy of G).
GUIDED_MODES = (GLNetMode.GLOBAL_TO_LOCAL, GLNetMode.AGGREGATE, GLNetMode.BIDIRECTIONAL)

#: GDAL block cache while predicting, in MB: enough for a scene's reads and
#: the output tiles it touches, and a bound on memory whatever the raster size.
GDAL_CACHE_MB = 64

#: Patches per forward pass by device type, measured with the ResNet-50 G->L
#: on a 2448 px scene (benchmarks/inference_speed.py, RESULTS.md): on the CPU
#: a sub-batch of 1 was the fastest and the leanest.
DEFAULT_BATCH_SIZES = {"cpu": 1, "cuda": 6}

#: Scenes whose global views go through G together in global mode (unless
#: told otherwise): on the CPU, ResNet-18 and ResNet-50 took 20-30 % less time
#: a 256 px view in fours than one at a time, and 10-20 % less at 508 px
#: (RESULTS.md).
DEFAULT_GLOBAL_VIEWS = 4

#: Whether the model and its inputs use the channels-last memory format
#: (faster convolutions in oneDNN and cuDNN; same classes).
CHANNELS_LAST = True


def default_batch_size(device: torch.device | str,
                       network_mode: GLNetMode = GLNetMode.GLOBAL_TO_LOCAL) -> int:
    """Return the patches (global mode: views) per forward pass unless told otherwise."""
    if network_mode is GLNetMode.GLOBAL:
        return DEFAULT_GLOBAL_VIEWS
    return DEFAULT_BATCH_SIZES.get(torch.device(device).type, 1)


class PredictMode(StrEnum):
    """Which logits make the prediction (the paper's Table 2 comparison).

    GLNET uses the checkpoint's own mode (G->L or G<->L, or G alone for a
    stage-1 checkpoint; coarse-to-fine for a checkpoint trained so); GLOBAL
    the global branch alone on the downsampled scene; LOCAL the local
    branch's own logits on the patches (computed under the checkpoint's
    sharing mode, without the aggregation layer); COARSE_TO_FINE runs G->L
    only on the patches that touch a foreground region of G's prediction
    (:mod:`glnet_geo.coarse_to_fine`) and keeps G's prediction elsewhere.
    """

    GLNET = "glnet"
    GLOBAL = "global"
    LOCAL = "local"
    COARSE_TO_FINE = "coarse-to-fine"

    @classmethod
    def parse(cls, value: PredictMode | str) -> PredictMode:
        """``value`` as a mode; an unknown one raises :class:`InputError`."""
        return parse_choice(cls, value, "mode", "--mode")


@dataclass(frozen=True)
class SceneSettings:
    """How one scene is predicted; plain data, so it can travel to workers.

    Attributes:
        mode: Which logits make the prediction.
        network_mode: The mode GLNet runs in.
        global_size: Side of the global view in pixels.
        patch_size: Side of the local patches in pixels.
        min_overlap: Minimum overlap of neighbouring patches in pixels.
        batch_size: Patches per forward pass of the local branch, or in
            global mode scenes whose global views go through G together
            (None: the default, :func:`default_batch_size`).
        skip_threshold: Skip the local branch on patches where G predicts
            one class with a probability above this everywhere (G's
            prediction is kept there); None never skips.
        precision: The dtype the network computes in (``auto``: resolved
            where the model runs, :meth:`on`).

    """

    mode: PredictMode
    network_mode: GLNetMode
    global_size: int
    patch_size: int
    min_overlap: int
    batch_size: int | None = None
    skip_threshold: float | None = None
    precision: Precision = Precision.AUTO

    @classmethod
    def from_config(cls, config: ModelConfig, mode: PredictMode | str = PredictMode.GLNET,
                    batch_size: int | None = None, skip_threshold: float | None = None,
                    precision: Precision | str = Precision.AUTO) -> SceneSettings:
        """Build the settings for a checkpoint's configuration.

        Raises:
            InputError: An unknown mode or precision, a mode the checkpoint's
                stage cannot run, a batch size below 1 or a skip threshold
                outside (0, 1].

        """
        mode = PredictMode.parse(mode)
        precision = Precision.parse(precision)
        if batch_size is not None and batch_size < 1:
            raise InputError(f"batch size {batch_size}; expected at least 1 (--batch-size)")
        if skip_threshold is not None and not 0 < skip_threshold <= 1:
            raise InputError(f"--skip-threshold {skip_threshold}; expected a probability in "
                             "(0, 1], e.g. 0.6 (1.0 never skips)")
        if mode is PredictMode.GLNET and config.coarse_to_fine:
            mode = PredictMode.COARSE_TO_FINE
        if mode is PredictMode.GLOBAL:
            network_mode = GLNetMode.GLOBAL
        else:
            network_mode = config.stage.mode
            if mode is PredictMode.LOCAL and network_mode is GLNetMode.GLOBAL:
                raise InputError(f"--mode local needs a trained local branch but this checkpoint "
                                 f"is at stage '{Stage.GLOBAL.value}'; use --mode global or a "
                                 "checkpoint trained further")
        settings = cls(mode=mode, network_mode=network_mode, global_size=config.global_size,
                       patch_size=config.patch_size, min_overlap=config.min_overlap,
                       batch_size=batch_size, skip_threshold=skip_threshold,
                       precision=precision)
        if settings.guided and (mode is PredictMode.LOCAL or network_mode not in GUIDED_MODES):
            what = ("--mode coarse-to-fine" if mode is PredictMode.COARSE_TO_FINE
                    else "--skip-threshold")
            raise InputError(f"{what} needs G's prediction before the patches: a checkpoint "
                             f"trained past stage '{Stage.GLOBAL.value}' in --mode glnet or "
                             f"coarse-to-fine, not --mode {mode.value} at stage "
                             f"'{config.stage.value}'")
        return settings

    def on(self, device: torch.device | str) -> SceneSettings:
        """Return these settings with the batch size and precision resolved for ``device``.

        Raises:
            InputError: A precision ``device`` cannot run.

        """
        batch_size = self.batch_size or default_batch_size(device, self.network_mode)
        return dataclasses.replace(self, batch_size=batch_size,
                                   precision=resolve_precision(self.precision, device))

    @property
    def uses_patches(self) -> bool:
        """Whether the prediction comes from per-patch logits."""
        return self.network_mode is not GLNetMode.GLOBAL

    def views_together(self, with_probabilities: bool = False) -> bool:
        """Whether several scenes' global views go through G together.

        Only for global mode's classes alone: a scene's patches, or its
        probabilities, are predicted one scene at a time.
        """
        return not (self.uses_patches or with_probabilities)

    def scenes_per_pass(self, with_probabilities: bool = False) -> int:
        """Return how many scenes are predicted together (see :meth:`views_together`)."""
        if not self.views_together(with_probabilities):
            return 1
        return self.batch_size or DEFAULT_GLOBAL_VIEWS

    @property
    def guided(self) -> bool:
        """Whether G's prediction chooses the patches the local branch runs on."""
        return self.mode is PredictMode.COARSE_TO_FINE or self.skip_threshold is not None

    def padded_shape(self, window: Window) -> tuple[int, int]:
        """Return a read window's size, each side padded up to the patch size if shorter."""
        return (max(int(window.height), self.patch_size),
                max(int(window.width), self.patch_size))

    def steps(self, scene: Scene) -> int:
        """Return the units of progress of a scene: its patches, or 1 in global mode."""
        if not self.uses_patches:
            return 1
        return len(patch_windows(*self.padded_shape(scene.read), self.patch_size,
                                 self.min_overlap))


@dataclass(frozen=True)
class PredictOptions:
    """The options of a prediction run, for every input alike.

    Attributes:
        mode: Which logits make the prediction (:class:`PredictMode`).
        skip_threshold: Skip the local branch where G is this confident
            (None: never).
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
        precision: ``auto``, ``fp32``, ``bf16`` or ``fp16``.
        batch_size: Patches per forward pass (None: the device's).
        scene_size: Side of a scene in pixels (None: the checkpoint's).
        halo: Context kept around each core (None: half a patch).
        bands: 1-based input bands instead of the checkpoint's.
        nodata: Mask the pixels where every band holds this value.
        overwrite: Replace existing outputs.
        progress: Show a progress bar (None: only on a terminal).
        resume: Keep finished scenes on disk and take those of an
            interrupted run.
        creation_options: GDAL creation options of the class COG, checked
            (:func:`glnet_geo.io.writer.check_creation_options`).

    """

    mode: PredictMode | str = PredictMode.GLNET
    skip_threshold: float | None = None
    device: str = "auto"
    precision: Precision | str = Precision.AUTO
    batch_size: int | None = None
    scene_size: int | None = None
    halo: int | None = None
    bands: Sequence[int] | None = None
    nodata: float | None = None
    overwrite: bool = False
    progress: bool | None = None
    resume: bool = False
    creation_options: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "creation_options",
                           check_creation_options(self.creation_options or {}))
        if self.bands is not None:
            object.__setattr__(self, "bands", tuple(self.bands))

    def scene_settings(self, config: ModelConfig) -> SceneSettings:
        """Return the per-scene settings for a checkpoint (resolved by :meth:`SceneSettings.on`)."""
        return SceneSettings.from_config(config, self.mode, self.batch_size,
                                         self.skip_threshold, self.precision)

    def scene_grid_sizes(self, config: ModelConfig) -> tuple[int, int]:
        """Return the scene size and halo for a checkpoint (:func:`check_scene_size`)."""
        halo = default_halo(config.patch_size) if self.halo is None else int(self.halo)
        return check_scene_size(config, self.scene_size), halo


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """Resolve ``auto`` (CUDA when available, else CPU), ``cpu``, ``cuda`` or ``cuda:N``.

    Raises:
        InputError: An unknown device, or CUDA asked for but not available.

    """
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError):
        raise InputError(f"unknown device {device!r}; expected auto, cpu, cuda or cuda:N "
                         "(--device)") from None
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise InputError(f"--device {device}: no CUDA device is available here; use "
                             "--device cpu or --device auto")
        if resolved.index is not None and resolved.index >= torch.cuda.device_count():
            raise InputError(f"--device {device}: only {torch.cuda.device_count()} CUDA "
                             f"device(s) here; use cuda:0..cuda:{torch.cuda.device_count() - 1}")
    elif resolved.type != "cpu":
        raise InputError(f"unsupported device {device!r}; expected auto, cpu, cuda or cuda:N")
    return resolved


def check_scene_size(config: ModelConfig, scene_size: int | None) -> int:
    """Return the scene size to use: ``scene_size`` or the checkpoint's.

    Raises:
        InputError: A scene smaller than the checkpoint's patch.

    """
    scene_size = config.scene_size if scene_size is None else int(scene_size)
    if scene_size < config.patch_size:
        raise InputError(f"scene size {scene_size} px is smaller than the checkpoint's patch "
                         f"size {config.patch_size} px; use --scene-size {config.patch_size} "
                         "or more")
    return scene_size


def prepare_checkpoint(checkpoint: Checkpoint | str | os.PathLike, device: torch.device,
                       precision: Precision) -> Checkpoint:
    """Load a checkpoint (or take a loaded one) prepared for prediction.

    The network is put on ``device`` and prepared by
    :meth:`~glnet_geo.models.GLNet.for_inference` for ``precision`` (a
    resolved one). A loaded :class:`Checkpoint` is left as it is: its network
    is copied first, unless it was already prepared so.
    """
    dtype = precision.dtype
    if isinstance(checkpoint, Checkpoint):
        if checkpoint.model.inference_dtype == dtype:
            checkpoint.model.to(device)
            return checkpoint
        checkpoint = dataclasses.replace(checkpoint, model=copy.deepcopy(checkpoint.model).eval())
    else:
        checkpoint = load_checkpoint(checkpoint, device=device)
    checkpoint.model.to(device).for_inference(dtype, channels_last=CHANNELS_LAST)
    return checkpoint
