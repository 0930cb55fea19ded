"""Predicting class rasters of any size with GLNet, from disk to disk.

The work is split so that it can be distributed later:

- :func:`predict_scene` is a pure function of one scene: it reads the
  scene's global view (a decimated read) and its patches (windowed reads, in
  sub-batches), runs GLNet, blends the logits of overlapping patches and
  returns the core's classes and probabilities with the core's window.
- :func:`predict_raster` is the driver: it checks every input and output
  before the model runs, loops over the scene grid
  (:func:`glnet_geo.io.scenes.scene_grid`, visited in bands that GDAL's block
  cache holds: :func:`cached_band_width`), writes each core through windowed
  writes (:class:`glnet_geo.io.writer.CogWriter`) and publishes the
  Cloud-Optimized GeoTIFFs only when complete, then the optional preview and
  polygons. :func:`predict_rasters` does the same for several inputs.

Blending: each patch's logits (at 1/4 of the patch size) are upsampled
bilinearly to the patch size, turned into softmax probabilities and
accumulated with a tent weight (:func:`blend_weights`, highest at the patch
centre) in a buffer the size of the scene; the probabilities are the
weighted means and the classes their argmax. Memory therefore depends on the
scene size, the patch size and the batch size, never on the raster's size;
GDAL's block cache is capped too (:data:`GDAL_CACHE_MB`).
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from rasterio.windows import Window

import glnet_geo
from glnet_geo.checkpoint import Checkpoint, ModelConfig, load_checkpoint
from glnet_geo.coarse_to_fine import BACKGROUND, confident_patches, refined_patches
from glnet_geo.errors import GLNetGeoError, InputError, OutputError
from glnet_geo.imagery import warn_if_unlike_training
from glnet_geo.io.grid import boxes_from_windows, patch_windows
from glnet_geo.io.reader import RasterInput, block_cache, check_georeferencing, open_dataset
from glnet_geo.io.scenes import Scene, default_halo, in_bands, scene_grid
from glnet_geo.io.writer import (
    CLASS_NODATA,
    CogWriter,
    check_creation_options,
    check_geotiff_suffix,
    check_output,
    class_raster_writer,
    probability_raster_writer,
)
from glnet_geo.models import GLNet, GLNetMode
from glnet_geo.models.stages import Stage
from glnet_geo.precision import Precision, resolve_precision

log = logging.getLogger(__name__)

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

#: Whether the model and its inputs use the channels-last memory format
#: (faster convolutions in oneDNN and cuDNN; same classes).
CHANNELS_LAST = True


def default_batch_size(device: torch.device | str) -> int:
    """Return the patches per forward pass used on ``device`` unless told otherwise."""
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


@dataclass(frozen=True)
class SceneSettings:
    """How one scene is predicted; plain data, so it can travel to workers.

    Attributes:
        mode: Which logits make the prediction.
        network_mode: The mode GLNet runs in.
        global_size: Side of the global view in pixels.
        patch_size: Side of the local patches in pixels.
        min_overlap: Minimum overlap of neighbouring patches in pixels.
        batch_size: Patches per forward pass of the local branch (None: the
            device's default, :func:`default_batch_size`).
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
        try:
            mode = PredictMode(mode)
        except ValueError:
            raise InputError(f"unknown mode {mode!r}; expected one of "
                             f"{', '.join(m.value for m in PredictMode)}") from None
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
        batch_size = self.batch_size or default_batch_size(device)
        return dataclasses.replace(self, batch_size=batch_size,
                                   precision=resolve_precision(self.precision, device))

    @property
    def uses_patches(self) -> bool:
        """Whether the prediction comes from per-patch logits."""
        return self.network_mode is not GLNetMode.GLOBAL

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


@dataclass
class ScenePrediction:
    """The prediction of one scene's core.

    Attributes:
        window: The core on the raster.
        classes: ``(h, w)`` uint8 class ids, 255 where the input is invalid.
        valid: ``(h, w)`` validity of the input (nodata, masks).
        probabilities: ``(K, h, w)`` float32 blended probabilities, or None.

    """

    window: Window
    classes: np.ndarray
    valid: np.ndarray
    probabilities: np.ndarray | None = None


def blend_weights(patch_size: int) -> torch.Tensor:
    """Return the per-pixel weight of a patch's prediction where patches overlap.

    A separable tent: 1 at the centre, falling linearly to ``1 / ceil(P / 2)``
    at the edges, so pixels near a patch's border (less context) count less
    than the same pixels seen near the centre of a neighbour.

    Returns:
        ``(P, P)`` float32 tensor.

    """
    half = -(-patch_size // 2)
    i = torch.arange(patch_size, dtype=torch.float32)
    ramp = torch.minimum(i + 1, patch_size - i).clamp(max=half) / half
    return ramp[:, None] * ramp[None, :]


def _offset(window: Window, origin: Window) -> Window:
    """Move ``window`` (relative to ``origin``) into the coordinates ``origin`` is in."""
    return Window(window.col_off + origin.col_off, window.row_off + origin.row_off,
                  window.width, window.height)


def global_view(raster: RasterInput, window: Window, settings: SceneSettings,
                device: torch.device) -> torch.Tensor:
    """Read the scene's global view: ``window`` decimated to ``global_size``.

    Returns:
        ``(1, C, G, G)`` float32 tensor on ``device``.

    """
    size = settings.global_size
    x, _ = raster.read_global(window, (size, size))
    return torch.from_numpy(x)[None].to(device)


#: Reads the patches at some windows of a scene as an ``(n, C, P, P)`` tensor.
PatchReader = Callable[[Sequence[Window]], torch.Tensor]


def _patch_batches(read_patches: PatchReader, windows: Sequence[Window], batch_size: int,
                   on_patches: Callable[[int], None] | None) -> Iterator[torch.Tensor]:
    """Read the patches of a scene lazily, ``batch_size`` windows at a time."""
    for start in range(0, len(windows), batch_size):
        chunk = windows[start:start + batch_size]
        yield read_patches(chunk)
        if on_patches is not None:
            on_patches(len(chunk))


def scene_probabilities(model: GLNet, raster: RasterInput, read: Window,
                        settings: SceneSettings, device: torch.device,
                        on_patches: Callable[[int], None] | None = None, *,
                        crop: Window | None = None, probabilities: bool = True) -> torch.Tensor:
    """Compute blended class probabilities over a scene's (padded) read window.

    The global view is a decimated read of the window, the patches windowed
    reads on the patch grid; :func:`blend_scene` does the rest.

    Args:
        model: GLNet in eval mode on ``device``.
        raster: The input.
        read: The scene's read window.
        settings: How to predict.
        device: Where the model runs.
        on_patches: Called with the number of patches after each sub-batch
            (or with 1 after the global pass in global mode).
        crop: Return only this part of the read window (see :func:`blend_scene`).
        probabilities: See :func:`blend_scene`.

    Returns:
        ``(K, H, W)`` float32 probabilities on ``device``; ``H, W`` are the
        read window's size, each padded up to the patch size if shorter
        (padding at the bottom and right), or ``crop``'s.

    """
    height, width = settings.padded_shape(read)
    padded = Window(read.col_off, read.row_off, width, height)
    image = global_view(raster, padded, settings, device)
    windows = patch_windows(height, width, settings.patch_size, settings.min_overlap)

    def read_patches(chunk: Sequence[Window]) -> torch.Tensor:
        arrays = [raster.read(_offset(w, read))[0] for w in chunk]
        return torch.from_numpy(np.stack(arrays)).to(device)

    return blend_scene(model, image, windows, read_patches, (height, width), settings,
                       on_patches, crop=crop, probabilities=probabilities)


def blend_scene(model: GLNet, global_image: torch.Tensor, windows: Sequence[Window],
                read_patches: PatchReader, scene_shape: tuple[int, int],
                settings: SceneSettings,
                on_patches: Callable[[int], None] | None = None, *,
                crop: Window | None = None, probabilities: bool = True) -> torch.Tensor:
    """Run GLNet on a scene and blend its patches' probabilities.

    Each patch's logits are upsampled bilinearly to the patch size, turned
    into probabilities and accumulated with :func:`blend_weights`. With
    coarse-to-fine or a skip threshold (``settings.guided``), G runs first and
    :func:`patches_to_refine` chooses the patches the network runs on; G's
    upsampled probabilities are blended in on the others. Prediction from
    rasters (:func:`scene_probabilities`) and scoring of scenes in memory
    (:mod:`glnet_geo.training.evaluation`) both go through here.

    Args:
        model: GLNet in eval mode.
        global_image: ``(1, C, G, G)`` the scene's global view, on the model's
            device.
        windows: The patch grid on the scene.
        read_patches: Gives the patches at some of ``windows``, on the same
            device; called lazily, ``settings.batch_size`` windows at a time.
        scene_shape: ``(H, W)`` of the scene in pixels.
        settings: How to predict.
        on_patches: Progress callback (see :func:`scene_probabilities`).
        crop: Return only this window of the scene (e.g. a scene's core):
            the blending buffers cover only it.
        probabilities: False allows scores with the same argmax instead of
            probabilities where that is cheaper: in global mode the upsampled
            logits without their softmax, otherwise the weighted sums without
            their division by the weights.

    Returns:
        ``(K, H, W)`` float32 probabilities (of ``crop`` if given).

    """
    height, width = scene_shape
    area = crop or Window(0, 0, width, height)
    rows, cols = area.toslices()
    device = global_image.device
    with torch.inference_mode():
        if not settings.uses_patches:
            logits = _float(model(global_image, None, None, mode=GLNetMode.GLOBAL).logits)
            scores = F.interpolate(logits, size=(height, width), mode="bilinear",
                                   align_corners=False)[0, :, rows, cols]
            if on_patches is not None:
                on_patches(1)
            return scores.softmax(0) if probabilities else scores
        patch = settings.patch_size
        windows = list(windows)
        boxes = boxes_from_windows(windows, height, width)
        weight = blend_weights(patch).to(device)
        total = torch.zeros((model.num_classes, int(area.height), int(area.width)),
                            device=device)
        # the weights are > 0 everywhere, so without probabilities the weighted sums,
        # which have the argmax of the means, are enough
        weights = torch.zeros(total.shape[1:], device=device) if probabilities else None

        def add(probs: torch.Tensor, window: Window) -> None:
            """Add a patch's weighted probabilities where its window meets ``area``."""
            inside = _overlap(window, area)
            if inside is None:
                return
            source, target = inside
            total[(slice(None), *target)] += probs[(slice(None), *source)] * weight[source]
            if weights is not None:
                weights[target] += weight[source]

        def result() -> torch.Tensor:
            return total if weights is None else total / weights

        refined, global_output = list(range(len(windows))), None
        if settings.guided:  # G first; its prediction stands where L is not run
            first = (model.fixed_global_branch if settings.network_mode is
                     GLNetMode.BIDIRECTIONAL else model.global_branch)
            global_output = first(global_image)
            coarse = F.interpolate(_float(global_output.logits), size=(height, width),
                                   mode="bilinear", align_corners=False).softmax(1)[0]
            refined = patches_to_refine(coarse, windows, settings)
            for i in sorted(set(range(len(windows))) - set(refined)):
                add(coarse[(slice(None), *windows[i].toslices())], windows[i])
            del coarse
            if on_patches is not None:
                on_patches(len(windows) - len(refined))
            if not refined:
                return result()
        windows = [windows[i] for i in refined]
        batch_size = settings.batch_size or default_batch_size(device)
        batches = _patch_batches(read_patches, windows, batch_size, on_patches)
        for part in model.iter_scene(global_image, boxes[refined], batches,
                                     mode=settings.network_mode, scene_shape=(height, width),
                                     global_output=global_output):
            logits = part.local_logits if settings.mode is PredictMode.LOCAL else part.logits
            probs = F.interpolate(_float(logits), size=(patch, patch), mode="bilinear",
                                  align_corners=False).softmax(1)
            for p, window in zip(probs, windows[part.index], strict=True):
                add(p, window)
        return result()


def _float(logits: torch.Tensor) -> torch.Tensor:
    """Return logits as float32 for blending; fp16 ones must be finite.

    Raises:
        GLNetGeoError: fp16 overflowed (infinite or NaN logits).

    """
    if logits.dtype == torch.float16 and not torch.isfinite(logits).all():
        raise GLNetGeoError("the network overflowed in fp16 (non-finite logits); predict "
                            "with --precision bf16 or --precision fp32")
    return logits.float()


def _overlap(window: Window, area: Window) -> tuple[tuple[slice, slice],
                                                      tuple[slice, slice]] | None:
    """Where ``window`` meets ``area`` (both in scene pixels), or None.

    Returns:
        The rows and columns of the overlap relative to ``window`` and to
        ``area``.

    """
    top, left = max(window.row_off, area.row_off), max(window.col_off, area.col_off)
    bottom = min(window.row_off + window.height, area.row_off + area.height)
    right = min(window.col_off + window.width, area.col_off + area.width)
    if top >= bottom or left >= right:
        return None
    return tuple((slice(int(top - w.row_off), int(bottom - w.row_off)),
                  slice(int(left - w.col_off), int(right - w.col_off))) for w in (window, area))


def patches_to_refine(coarse: torch.Tensor, windows: Sequence[Window],
                      settings: SceneSettings) -> list[int]:
    """Choose the patches the local branch runs on from G's prediction.

    Coarse-to-fine keeps the patches that touch a foreground region
    (:func:`glnet_geo.coarse_to_fine.refined_patches`); a skip threshold then
    drops those where G is confident of one class everywhere
    (:func:`glnet_geo.coarse_to_fine.confident_patches`).

    Args:
        coarse: ``(K, H, W)`` G's probabilities at the scene's size.
        windows: The scene's patch windows.
        settings: How to predict.

    Returns:
        Indexes into ``windows``, in order.

    """
    refined = range(len(windows))
    if settings.mode is PredictMode.COARSE_TO_FINE:
        refined = refined_patches((coarse.max(0).indices != BACKGROUND).cpu().numpy(), windows)
    if settings.skip_threshold is not None:
        confident = set(confident_patches(coarse, windows, settings.skip_threshold))
        refined = [i for i in refined if i not in confident]
    return list(refined)


def predict_scene(model: GLNet, raster: RasterInput, scene: Scene, settings: SceneSettings,
                  device: torch.device | str = "cpu", with_probabilities: bool = False,
                  on_patches: Callable[[int], None] | None = None) -> ScenePrediction:
    """Predict one scene and return its core.

    Args:
        model: GLNet in eval mode on ``device``.
        raster: The input (only this scene's windows are read).
        scene: The scene (read window and core).
        settings: How to predict.
        device: Where the model runs.
        with_probabilities: Also return the core's probabilities.
        on_patches: Progress callback (see :func:`scene_probabilities`).

    Returns:
        The core's classes (255 where the input is invalid), validity and,
        if asked, probabilities.

    """
    device = torch.device(device)
    core = scene_probabilities(model, raster, scene.read, settings, device, on_patches,
                               crop=scene.core_in_read, probabilities=with_probabilities)
    classes = class_ids(core)
    valid = raster.valid_mask(scene.core)
    classes[~valid] = CLASS_NODATA
    return ScenePrediction(window=scene.core, classes=classes, valid=valid,
                           probabilities=core.cpu().numpy() if with_probabilities else None)


def class_ids(scores: torch.Tensor, rows: int = 256) -> np.ndarray:
    """Return the class of each pixel of ``(K, H, W)`` scores as ``(H, W)`` uint8.

    The argmax is taken ``rows`` rows at a time, so no full-size int64 index
    map is held; ``max(0).indices`` is ``argmax(0)`` (first maximum on ties),
    several times faster on the CPU.
    """
    classes = torch.empty(scores.shape[1:], dtype=torch.uint8, device=scores.device)
    for start in range(0, scores.shape[1], rows):
        classes[start:start + rows] = scores[:, start:start + rows].max(0).indices
    return classes.cpu().numpy()


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


@dataclass
class PredictedRaster:
    """What :func:`predict_raster` wrote.

    Attributes:
        input: The input raster.
        classes: The class raster (COG).
        probabilities: The probabilities raster (COG), if asked for.
        preview: The quick-look PNG, if asked for.
        polygons: The polygons file, if asked for.
        stac: The STAC Item, if asked for.
        scenes: Number of scenes of the input.
        resumed: Scenes taken from an interrupted run rather than predicted.
        precision: The precision the network computed in.

    """

    input: str
    classes: Path
    probabilities: Path | None = None
    preview: Path | None = None
    polygons: Path | None = None
    stac: Path | None = None
    scenes: int = 0
    resumed: int = 0
    precision: str = ""


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


def _check_outputs(source: str, outputs: Sequence[Path | None], overwrite: bool) -> None:
    """Check every output before any work: writable, not existing, not the input.

    Also named by what they hold (GeoTIFFs ``.tif``, the preview ``.png``, polygons a known
    format) and placeable: the input has a geotransform (and a CRS for polygons).
    """
    classes, probabilities, preview, polygons = (*outputs, None, None, None)[:4]
    check_geotiff_suffix(classes)
    if probabilities is not None:
        check_geotiff_suffix(probabilities, "probabilities raster", "--probabilities")
    if preview is not None and Path(preview).suffix.lower() != ".png":
        raise OutputError(f"--preview {preview}: the preview is a PNG; name it "
                          f"{Path(preview).with_suffix('.png')}")
    if polygons is not None:
        from glnet_geo import vectorize

        vectorize.check_output(polygons, vectorize.resolve_format(polygons), overwrite)
    with open_dataset(source) as dataset:
        check_georeferencing(dataset, polygons=polygons is not None)
    given = [Path(p) for p in outputs if p is not None]
    for path in given:
        check_output(path, overwrite=overwrite)
        if not source.startswith("/vsi") and Path(source).exists() and \
                path.resolve() == Path(source).resolve():
            raise OutputError(f"output {path} is the input raster; choose another output path")
    resolved = [p.resolve() for p in given]
    if len(set(resolved)) != len(resolved):
        raise OutputError(f"two outputs share a path ({', '.join(map(str, given))}); give each "
                          "output its own path")


def _progress(total: int, description: str, enabled: bool | None):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=description, unit="patch", dynamic_ncols=True,
                disable=None if enabled is None else not enabled, leave=False)


def predict_raster(checkpoint: Checkpoint | str | os.PathLike, input: str | os.PathLike,
                   output: str | os.PathLike, *, probabilities: str | os.PathLike | None = None,
                   preview: str | os.PathLike | None = None,
                   polygons: str | os.PathLike | None = None,
                   mode: PredictMode | str = PredictMode.GLNET,
                   skip_threshold: float | None = None, device: str = "auto",
                   precision: Precision | str = Precision.AUTO,
                   batch_size: int | None = None, scene_size: int | None = None,
                   halo: int | None = None, bands: Sequence[int] | None = None,
                   nodata: float | None = None, overwrite: bool = False,
                   progress: bool | None = None, workers: int | None = None,
                   threads_per_worker: int | None = None, scheduler: str | None = None,
                   resume: bool = False,
                   stac: str | os.PathLike | None = None,
                   creation_options: Mapping[str, str] | None = None) -> PredictedRaster:
    """Predict a class raster aligned pixel for pixel with ``input``.

    The raster is cut into scenes (:func:`glnet_geo.io.scenes.scene_grid`);
    each is predicted by :func:`predict_scene` and its core written into a
    tiled GeoTIFF that becomes a Cloud-Optimized GeoTIFF with overviews, moved
    to ``output`` only when complete. The full-resolution raster is never in
    memory.

    Args:
        checkpoint: A checkpoint path or a loaded :class:`Checkpoint`.
        input: Any raster rasterio opens (GeoTIFF, VRT, ``/vsicurl/...``).
        output: Path of the class raster (uint8 COG, nodata 255, palette and
            class names from the checkpoint).
        probabilities: Also write per-class confidence here (one uint8 band
            per class, ``round(255 * p)``, masked pixels 0 under an internal
            mask).
        preview: Also write a quick-look PNG (input with classes overlaid and
            a legend) here.
        polygons: Also vectorise the classes into this file
            (:func:`glnet_geo.vectorize.vectorize_raster`).
        mode: ``glnet`` (the checkpoint's own), ``global``, ``local`` or
            ``coarse-to-fine`` (:class:`PredictMode`).
        skip_threshold: Skip the local branch on patches where G predicts
            one class with a probability above this everywhere (None or
            1.0: never).
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
        precision: ``auto``, ``fp32``, ``bf16`` or ``fp16``
            (:mod:`glnet_geo.precision`).
        batch_size: Patches per forward pass (default: the device's,
            :func:`default_batch_size`).
        scene_size: Side of a scene in pixels (default: the checkpoint's).
        halo: Context kept around each scene's core where scenes meet
            (default: half a patch).
        bands: 1-based input bands to use instead of the checkpoint's.
        nodata: Mask the pixels where every band holds this value, for an
            input whose nodata collar is not tagged (``--nodata``).
        overwrite: Replace existing outputs.
        progress: Show a progress bar (default: only on a terminal).
        workers: Predict the scenes on a local Dask cluster of this many
            processes (:mod:`glnet_geo.distributed`).
        threads_per_worker: Torch threads of each Dask task (default: 1 on
            a local cluster, the workers' own on an existing one).
        scheduler: Predict the scenes on the Dask cluster at this address
            (``tcp://host:8786``) instead.
        resume: Keep each finished scene on disk and, on a new run, take the
            scenes an interrupted run finished (in process or on Dask).
        stac: Also write a STAC Item describing the outputs here
            (:mod:`glnet_geo.stac`).
        creation_options: GDAL creation options of the class COG (``--co``),
            e.g. ``{"COMPRESS": "ZSTD"}``, checked before any work
            (:func:`glnet_geo.io.writer.check_creation_options`).

    Returns:
        The paths written.

    Raises:
        CheckpointError: ``checkpoint`` is not a glnet-geo checkpoint.
        InputError: Unreadable input, mismatching bands, bad settings.
        OutputExistsError: An output exists and ``overwrite`` is false.
        OutputError: An output directory is missing or not writable.

    """
    source = os.fspath(input)
    paths = [Path(output), *(Path(p) if p is not None else None
                             for p in (probabilities, preview, polygons))]
    creation_options = check_creation_options(creation_options or {})
    options = dict(mode=mode, skip_threshold=skip_threshold, device=device,
                   precision=precision, batch_size=batch_size, scene_size=scene_size, halo=halo,
                   bands=bands, nodata=nodata, overwrite=overwrite, progress=progress,
                   creation_options=creation_options)
    cluster = dict(workers=workers, threads_per_worker=threads_per_worker, scheduler=scheduler)
    if stac is not None:  # a finished item is rewritten on --resume
        check_output(stac, overwrite=overwrite or resume)
        if Path(stac).resolve() in {p.resolve() for p in paths if p is not None}:
            raise OutputError(f"--stac {stac} is also another output; give the STAC Item its "
                              "own path, e.g. classes.json")
    in_parts = _predict_in_parts(checkpoint, [source], [paths], cluster, resume, options)
    if in_parts is not None:
        return _with_stac(in_parts[0], checkpoint, stac)
    torch_device = resolve_device(device)
    _check_outputs(source, paths, overwrite)
    precision = resolve_precision(precision, torch_device)
    loaded = prepare_checkpoint(checkpoint, torch_device, precision)
    config = loaded.config
    settings = SceneSettings.from_config(config, mode, batch_size, skip_threshold,
                                         precision).on(torch_device)
    scene_size = check_scene_size(config, scene_size)
    halo = default_halo(config.patch_size) if halo is None else int(halo)
    with block_cache(GDAL_CACHE_MB), \
            RasterInput.open(source, config.bands, config.normalization, bands,
                             nodata) as raster:
        warn_if_unlike_training(config.imagery, raster, source)
        scenes = in_bands(scene_grid(raster.height, raster.width, scene_size, halo),
                          cached_band_width(raster, scene_size))
        total = sum(settings.steps(scene) for scene in scenes)
        with _progress(total, Path(source).name, progress) as bar:
            cores = _predicted_cores(loaded.model, raster, scenes, settings, torch_device,
                                     probabilities is not None, bar)
            result = write_outputs(source, raster, config, cores,
                                   output_tags(source, settings, scene_size, halo), *paths,
                                   overwrite=overwrite, creation_options=creation_options)
    result.scenes, result.precision = len(scenes), settings.precision.value
    return _with_stac(result, loaded, stac)


def _with_stac(result: PredictedRaster, checkpoint: Checkpoint | str | os.PathLike,
               stac: str | os.PathLike | None) -> PredictedRaster:
    """Write the STAC Item of ``result`` when one is asked for."""
    if stac is not None:
        from glnet_geo.stac import write_prediction_item

        result.stac = write_prediction_item(stac, result, checkpoint)
    return result


def cached_band_width(raster: RasterInput, scene_size: int) -> int:
    """Return the width of the scene bands (:func:`~glnet_geo.io.scenes.in_bands`).

    The widest band whose row of scenes (``scene_size`` rows of pixels plus up
    to one block row, every band of the raster) fits in half of GDAL's block
    cache (:data:`GDAL_CACHE_MB`), so the next row of scenes finds the overlap
    still cached; at least one scene.
    """
    dataset = raster.dataset
    rows = scene_size + dataset.block_shapes[0][0]
    pixel_bytes = sum(np.dtype(dtype).itemsize for dtype in dataset.dtypes)
    return max(scene_size, GDAL_CACHE_MB * 2**20 // 2 // (rows * pixel_bytes))


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


def output_tags(source: str, settings: SceneSettings, scene_size: int,
                halo: int) -> dict[str, str]:
    """Return the dataset metadata of the rasters predicted from ``source``."""
    tags = {"software": f"glnet-geo {glnet_geo.__version__}", "source": Path(source).name,
            "predict_mode": settings.mode.value, "network_mode": settings.network_mode.value,
            "precision": settings.precision.value, "scene_size": str(scene_size),
            "halo": str(halo)}
    if settings.skip_threshold is not None:
        tags["skip_threshold"] = str(settings.skip_threshold)
    return tags


#: A predicted scene core: its window, ``(h, w)`` uint8 classes (255 where
#: invalid) and ``(K, h, w)`` uint8 probabilities ``round(255 * p)`` or None.
Core = tuple[Window, np.ndarray, np.ndarray | None]


def _predicted_cores(model: GLNet, raster: RasterInput, scenes: Sequence[Scene],
                     settings: SceneSettings, device: torch.device, with_probabilities: bool,
                     bar) -> Iterator[Core]:
    """Predict the scenes one at a time, lazily, as :data:`Core` tuples."""
    for done, scene in enumerate(scenes, start=1):
        bar.set_postfix_str(f"scene {done}/{len(scenes)}")
        prediction = predict_scene(model, raster, scene, settings, device,
                                   with_probabilities=with_probabilities, on_patches=bar.update)
        scaled = None
        if with_probabilities:
            scaled = np.rint(prediction.probabilities * 255).astype(np.uint8)
            scaled[:, ~prediction.valid] = 0
        yield prediction.window, prediction.classes, scaled


def write_outputs(source: str, raster: RasterInput, config: ModelConfig, cores: Iterable[Core],
                  tags: dict[str, str], classes: str | os.PathLike,
                  probabilities: str | os.PathLike | None = None,
                  preview: str | os.PathLike | None = None,
                  polygons: str | os.PathLike | None = None, *,
                  overwrite: bool = False,
                  creation_options: Mapping[str, str] | None = None) -> PredictedRaster:
    """Write the outputs of one input from its scene cores, as they come.

    Each core goes through windowed writes into hidden tiled GeoTIFFs, which
    become COGs moved to their final names only once every core is written
    (all temporary files are removed on any error, Ctrl-C included); then the
    preview and the polygons are made from the published class raster.

    Args:
        source: The input (named in the metadata).
        raster: The open input (its grid, and the preview's background).
        config: The checkpoint's configuration (class names, colours).
        cores: The predicted cores (e.g. a lazy generator), tiling the raster.
        tags: Dataset metadata of the rasters (see :func:`output_tags`).
        classes: Path of the class raster.
        probabilities: Path of the probabilities raster, if wanted.
        preview: Path of the quick-look PNG, if wanted.
        polygons: Path of the polygons, if wanted.
        overwrite: Replace existing polygons.
        creation_options: GDAL creation options of the class COG.

    Returns:
        The paths written (``scenes`` left at 0 for the caller).

    """
    result = PredictedRaster(input=source, classes=Path(classes))
    with ExitStack() as cleanup:
        writers: list[CogWriter] = [class_raster_writer(
            classes, raster.dataset, config.class_names, config.class_colors, tags,
            creation_options=creation_options)]
        if probabilities is not None:
            writers.append(probability_raster_writer(probabilities, raster.dataset,
                                                     config.class_names, tags))
        for writer in writers:
            cleanup.callback(writer.discard)
            writer.open()
        for window, class_ids, scaled in cores:
            writers[0].write(class_ids, window)
            if probabilities is not None:
                writers[1].write(scaled, window, mask=class_ids != CLASS_NODATA)
        for writer in writers:
            writer.finish()
        result.classes = writers[0].publish(overwrite)
        if probabilities is not None:
            result.probabilities = writers[1].publish(overwrite)
    if preview is not None:
        from glnet_geo.preview import write_preview

        result.preview = write_preview(raster, result.classes, preview, config.class_names,
                                       config.class_colors)
    if polygons is not None:
        from glnet_geo.vectorize import vectorize_raster

        result.polygons = Path(vectorize_raster(result.classes, polygons,
                                                probabilities=result.probabilities,
                                                overwrite=overwrite))
    return result


def _predict_in_parts(checkpoint: Checkpoint | str | os.PathLike, sources: Sequence[str],
                      plans: Sequence[Sequence[Path | None]], cluster: dict, resume: bool,
                      options: dict) -> list[PredictedRaster] | None:
    """Predict through per-scene parts when Dask or resuming is asked for, else None.

    ``cluster`` holds :class:`~glnet_geo.distributed.Cluster`'s fields.
    """
    on_dask = cluster["workers"] is not None or cluster["scheduler"] is not None
    if not on_dask and not resume:
        if cluster["threads_per_worker"] is not None:
            raise InputError(f"--threads-per-worker {cluster['threads_per_worker']} applies to "
                             "Dask workers; add --workers N or --scheduler ADDRESS")
        return None
    from glnet_geo.distributed import Cluster, predict_in_parts

    return predict_in_parts(checkpoint, sources, plans, resume=resume,
                            cluster=Cluster(**cluster) if on_dask else None, **options)


def output_paths(inputs: Sequence[str | os.PathLike], directory: str | os.PathLike,
                 suffix: str) -> list[Path]:
    """Name one path per input in ``directory`` after the input: ``<stem><suffix>``.

    Raises:
        InputError: Two inputs share a stem (their outputs would collide).

    """
    stems: dict[str, str] = {}
    for source in inputs:
        stem = Path(os.fspath(source)).stem
        if stem in stems:
            raise InputError(f"inputs {stems[stem]} and {os.fspath(source)} would both write "
                             f"{stem}{suffix}; rename one or predict them separately")
        stems[stem] = os.fspath(source)
    return [Path(directory) / f"{stem}{suffix}" for stem in stems]


def _output_directory(path: str | os.PathLike) -> Path:
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OutputError(f"output {path} is a file; with several inputs the output is a "
                          "directory, give a directory path")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create output directory {path} ({exc.strerror}); choose a "
                          "writable location") from None
    return path


def predict_rasters(checkpoint: Checkpoint | str | os.PathLike,
                    inputs: Sequence[str | os.PathLike], output: str | os.PathLike, *,
                    probabilities: str | os.PathLike | None = None,
                    preview: str | os.PathLike | None = None,
                    polygons: str | os.PathLike | None = None,
                    polygon_suffix: str = ".gpkg", stac: str | os.PathLike | None = None,
                    overwrite: bool = False, device: str = "auto",
                    precision: Precision | str = Precision.AUTO, workers: int | None = None,
                    threads_per_worker: int | None = None, scheduler: str | None = None,
                    resume: bool = False, **options) -> list[PredictedRaster]:
    """Predict several rasters; ``output`` (and each optional path) is a directory.

    Each input ``<stem>.<ext>`` gives ``output/<stem>.tif`` (and
    ``probabilities/<stem>.tif``, ``preview/<stem>.png``,
    ``polygons/<stem><polygon_suffix>``). Every output is checked before the
    first raster is predicted; the checkpoint is loaded once.

    Args:
        checkpoint: A checkpoint path or a loaded :class:`Checkpoint`.
        inputs: The rasters.
        output: Directory of the class rasters (created if missing).
        probabilities: Directory of the probabilities rasters.
        preview: Directory of the quick-look PNGs.
        polygons: Directory of the polygon files.
        polygon_suffix: File extension of the polygon files (the format).
        stac: Directory of the STAC Items (``<stem>.json``).
        overwrite: Replace existing outputs.
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
        precision: ``auto``, ``fp32``, ``bf16`` or ``fp16``.
        workers: Predict on a local Dask cluster of this many processes.
        threads_per_worker: Torch threads of each Dask task.
        scheduler: Predict on the Dask cluster at this address.
        resume: Skip inputs already done and scenes an interrupted run
            finished.
        **options: Passed to :func:`predict_raster` (mode, batch_size, ...).

    Returns:
        What was written for each input, in order.

    """
    plans: list[list[Path | None]] = [[p] for p in output_paths(inputs, output, ".tif")]
    for directory, suffix in ((probabilities, ".tif"), (preview, ".png"),
                              (polygons, polygon_suffix)):
        column = output_paths(inputs, directory, suffix) if directory else [None] * len(inputs)
        for plan, path in zip(plans, column, strict=True):
            plan.append(path)
    items = output_paths(inputs, stac, ".json") if stac else [None] * len(inputs)
    for directory in (output, probabilities, preview, polygons, stac):
        if directory is not None:
            _output_directory(directory)
    sources = [os.fspath(source) for source in inputs]
    cluster = dict(workers=workers, threads_per_worker=threads_per_worker, scheduler=scheduler)
    for item in items:
        if item is not None:
            check_output(item, overwrite=overwrite or resume)
    in_parts = _predict_in_parts(checkpoint, sources, plans, cluster, resume,
                                 {"device": device, "precision": precision,
                                  "overwrite": overwrite, **options})
    if in_parts is not None and stac is None:
        return in_parts
    if in_parts is not None:
        return [_with_stac(result, checkpoint, item)
                for result, item in zip(in_parts, items, strict=True)]
    for source, plan in zip(inputs, plans, strict=True):
        _check_outputs(os.fspath(source), plan, overwrite)
    torch_device = resolve_device(device)
    precision = resolve_precision(precision, torch_device)
    loaded = prepare_checkpoint(checkpoint, torch_device, precision)
    return [predict_raster(loaded, source, plan[0], probabilities=plan[1], preview=plan[2],
                           polygons=plan[3], overwrite=overwrite, device=device,
                           precision=precision, stac=item, **options)
            for source, plan, item in zip(inputs, plans, items, strict=True)]
