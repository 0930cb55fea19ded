"""One scene through GLNet: its global view, its patches, their blended probabilities.

:func:`predict_scene` is a pure function of one scene: it reads the scene's
global view (a decimated read) and its patches (windowed reads, in
sub-batches), runs GLNet, blends the logits of overlapping patches and returns
the core's classes and probabilities with the core's window.

Blending: each patch's logits (at 1/4 of the patch size) are upsampled
bilinearly to the patch size, turned into softmax probabilities and
accumulated with a tent weight (:func:`blend_weights`, highest at the patch
centre) in a buffer the size of the scene's core; the probabilities are the
weighted means and the classes their argmax. Memory therefore depends on the
scene size, the patch size and the batch size, never on the raster's size.
Global mode's classes alone come from G's logits without their upsampling where
it cannot change them (:func:`global_class_ids`).
Prediction from rasters (:func:`scene_probabilities`) and scoring of scenes in
memory (:mod:`glnet_geo.training.evaluation`) both go through
:func:`blend_scene`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from rasterio.windows import Window

from glnet_geo.classes import NO_CLASS
from glnet_geo.coarse_to_fine import BACKGROUND, confident_patches, refined_patches
from glnet_geo.errors import GLNetGeoError
from glnet_geo.io.grid import boxes_from_windows, patch_windows
from glnet_geo.io.reader import RasterInput
from glnet_geo.io.scenes import Scene
from glnet_geo.models import GLNet, GLNetMode
from glnet_geo.predict.argmax import class_ids, upsampled_class_ids
from glnet_geo.predict.settings import PredictMode, SceneSettings, default_batch_size


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


def global_view(raster: RasterInput, read: Window, settings: SceneSettings,
                device: torch.device) -> torch.Tensor:
    """Read a scene's global view: its read window decimated to ``global_size``.

    The window is first padded up to the patch size at the bottom and right
    (:meth:`~glnet_geo.predict.settings.SceneSettings.padded_shape`).

    Returns:
        ``(1, C, G, G)`` float32 tensor on ``device``.

    """
    height, width = settings.padded_shape(read)
    size = settings.global_size
    x, _ = raster.read_global(Window(read.col_off, read.row_off, width, height), (size, size))
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
    image = global_view(raster, read, settings, device)
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
            total[(slice(None), *target)].addcmul_(probs[(slice(None), *source)], weight[source])
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
    """Return logits as contiguous float32 for blending; fp16 ones must be finite.

    Contiguous: the network's are channels-last, in which the bilinear
    upsampling and the softmax over classes are about twice as slow.

    Raises:
        GLNetGeoError: fp16 overflowed (infinite or NaN logits).

    """
    if logits.dtype == torch.float16 and not torch.isfinite(logits).all():
        raise GLNetGeoError("the network overflowed in fp16 (non-finite logits); predict "
                            "with --precision bf16 or --precision fp32")
    return logits.to(torch.float32, memory_format=torch.contiguous_format)


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
    (prediction,) = predict_scenes(model, raster, [scene], settings, device, with_probabilities,
                                   on_patches)
    return prediction


def predict_scenes(model: GLNet, raster: RasterInput, scenes: Sequence[Scene],
                   settings: SceneSettings, device: torch.device | str = "cpu",
                   with_probabilities: bool = False,
                   on_patches: Callable[[int], None] | None = None) -> list[ScenePrediction]:
    """Predict scenes as :func:`predict_scene` does, global mode's views together.

    In global mode without probabilities the scenes' global views go through
    G in one forward pass (:func:`global_class_ids`); otherwise the scenes are
    predicted one after the other
    (:meth:`~glnet_geo.predict.settings.SceneSettings.views_together`).

    Returns:
        One prediction per scene, in order.

    """
    device = torch.device(device)
    if not settings.views_together(with_probabilities):
        cores = [scene_probabilities(model, raster, scene.read, settings, device, on_patches,
                                     crop=scene.core_in_read, probabilities=with_probabilities)
                 for scene in scenes]
        classes = [class_ids(core) for core in cores]
    else:
        cores = [None] * len(scenes)
        classes = global_class_ids(model, raster, scenes, settings, device, on_patches)
    predictions = []
    for scene, core, core_classes in zip(scenes, cores, classes, strict=True):
        valid = raster.valid_mask(scene.core)
        core_classes[~valid] = NO_CLASS
        predictions.append(ScenePrediction(
            window=scene.core, classes=core_classes, valid=valid,
            probabilities=core.cpu().numpy() if with_probabilities else None))
    return predictions


def global_class_ids(model: GLNet, raster: RasterInput, scenes: Sequence[Scene],
                     settings: SceneSettings, device: torch.device,
                     on_patches: Callable[[int], None] | None = None) -> list[np.ndarray]:
    """Return global mode's classes of the scenes' cores, without their probabilities.

    The scenes' global views go through G in one forward pass, and each one's
    classes at its scene's size are taken by
    :func:`~glnet_geo.predict.argmax.upsampled_class_ids`, which interpolates
    only where the classes may change.

    Returns:
        ``(h, w)`` uint8 class ids of each core.

    """
    images = torch.cat([global_view(raster, scene.read, settings, device) for scene in scenes])
    with torch.inference_mode():
        logits = _float(model(images, None, None, mode=GLNetMode.GLOBAL).logits)
    if on_patches is not None:
        on_patches(len(scenes))
    return [upsampled_class_ids(scene_logits, settings.padded_shape(scene.read),
                                scene.core_in_read)
            for scene_logits, scene in zip(logits, scenes, strict=True)]
