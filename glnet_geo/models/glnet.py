"""GLNet: a global branch G, a local branch L, feature-map sharing, aggregation.

G sees the whole scene downsampled (``global_image``, batch of 1); L sees
full-resolution patches laid on a grid over the scene, each with its ``box``
(top, left, height, width as fractions of the scene). Both branches are a
:class:`~glnet_geo.models.encoders.ResNetEncoder` and an
:class:`~glnet_geo.models.fpn.FPN`; logits come at 1/4 of the input size.

Modes (:class:`GLNetMode`, the paper's Table 2):

- ``GLOBAL``: G alone on the global image (the frozen stage-1 copy of G when
  the network has one: after stage 3, G's plain layers are stale).
- ``LOCAL``: L alone on each patch.
- ``AGGREGATE``: G and L without sharing; the aggregation layer combines L's
  last map (ps3) with the crop of G's ps3 at the patch's box.
- ``GLOBAL_TO_LOCAL`` (G->L): as ``AGGREGATE``, and G's maps (c2..c5, ps0,
  ps1, ps2) cropped at each box feed L's doubled layers.
- ``BIDIRECTIONAL`` (G<->L): a frozen copy of the stage-1 G feeds L as in
  G->L; L's maps of every patch are merged into global-sized maps (averaged
  where patches overlap) that feed G's doubled layers; the aggregation uses
  L's ps3 and the crop of this G's ps3.

Shared maps carry no gradient back to the branch that shared them (in the
paper's training that branch is frozen), and the feature-map regulariser
(``fmreg``) reaches the local branch only.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from glnet_geo.allocator import keep_freed_memory
from glnet_geo.errors import InputError, parse_choice
from glnet_geo.models.encoders import ResNetEncoder
from glnet_geo.models.fpn import FPN, PS3_CHANNELS, FeatureMaps, FPNOutput, init_decoder_conv
from glnet_geo.models.fusion import fold_batch_norm
from glnet_geo.models.losses import feature_map_regularizer
from glnet_geo.models.sharing import Box, LocalMapMerger, crop_maps, crop_resize

#: Slack allowed on ``top + height <= 1`` for boxes computed in floating point.
BOX_TOLERANCE = 1e-6

#: The parts of a GLNet that a training stage trains or freezes.
PARTS = ("global_branch", "local_branch", "aggregation")


class GLNetMode(StrEnum):
    """How GLNet computes its logits (see the module docstring)."""

    GLOBAL = "global"
    LOCAL = "local"
    AGGREGATE = "aggregate"
    GLOBAL_TO_LOCAL = "global-to-local"
    BIDIRECTIONAL = "bidirectional"

    @classmethod
    def parse(cls, value: GLNetMode | str) -> GLNetMode:
        """``value`` as a mode; a bad one raises :class:`InputError`."""
        return parse_choice(cls, value, "GLNet mode")


@dataclass
class GLNetOutput:
    """What :meth:`GLNet.forward` returns.

    Attributes:
        logits: The mode's final logits: G's ``(1, K, Hg/4, Wg/4)`` in
            ``GLOBAL``, L's ``(N, K, P/4, P/4)`` in ``LOCAL``, the aggregated
            ``(N, K, P/4, P/4)`` otherwise.
        global_logits: G's own logits, or None (``LOCAL``).
        local_logits: L's own logits, or None (``GLOBAL``).
        fmreg: Mean squared difference between L's ps3 and the crop of G's
            ps3 (``AGGREGATE`` and ``GLOBAL_TO_LOCAL``), else None.

    """

    logits: Tensor
    global_logits: Tensor | None = None
    local_logits: Tensor | None = None
    fmreg: Tensor | None = None


@dataclass
class ScenePart:
    """Logits of some consecutive patches of a scene, from :meth:`GLNet.iter_scene`.

    Attributes:
        index: The patches covered, as a slice into the scene's boxes.
        logits: ``(n, K, P/4, P/4)`` the mode's final per-patch logits.
        local_logits: L's own logits of these patches.
        fmreg: The regulariser over these patches, when asked for.

    """

    index: slice
    logits: Tensor
    local_logits: Tensor | None = None
    fmreg: Tensor | None = None


@dataclass
class BranchOutput:
    """Everything one pass of a branch computes."""

    features: list[Tensor]
    decoded: FPNOutput

    @property
    def logits(self) -> Tensor:
        """The branch's own logits."""
        return self.decoded.logits

    @property
    def ps3(self) -> Tensor:
        """The branch's last map, input of its classifier and of the aggregation."""
        return self.decoded.ps3

    @property
    def maps(self) -> FeatureMaps:
        """The maps this branch shares: c2..c5, ps0, ps1, ps2."""
        d = self.decoded
        return FeatureMaps(c=self.features, ps0=d.ps0, ps1=d.ps1, ps2=d.ps2)


class Branch(nn.Module):
    """One GLNet branch: an encoder and its FPN decoder."""

    def __init__(self, backbone: str, in_channels: int, num_classes: int,
                 weights: str | os.PathLike | None = None, shared: bool = True) -> None:
        """Build the branch (``shared``: with the layers that take shared maps)."""
        super().__init__()
        self.encoder = ResNetEncoder(backbone, in_channels, weights)
        self.fpn = FPN(self.encoder.out_channels, num_classes, shared=shared)
        #: The memory format inputs are put in (set by :meth:`GLNet.for_inference`).
        self.memory_format = torch.contiguous_format

    def forward(self, x: Tensor, shared: FeatureMaps | None = None) -> BranchOutput:
        """Run the branch on ``x``, with the other branch's maps if given."""
        features = self.encoder(self._as_input(x))
        return BranchOutput(features, self.fpn(features, shared))

    def forward_with_crops(self, x: Tensor, global_maps: FeatureMaps,
                           boxes: Sequence[Box]) -> BranchOutput:
        """Run the local branch on patches with G's maps cropped at their boxes."""
        features = self.encoder(self._as_input(x))
        shared = crop_maps(global_maps, boxes, [f.shape[-2:] for f in features])
        return BranchOutput(features, self.fpn(features, shared))

    def _as_input(self, x: Tensor) -> Tensor:
        """``x`` in the dtype of the weights and the branch's memory format."""
        return x.to(dtype=self.encoder.conv1.weight.dtype, memory_format=self.memory_format)


class Aggregation(nn.Module):
    """The 3x3 conv over L's ps3 and the crop of G's ps3 that gives the final logits.

    The official code calls it ``ensemble_conv``. Because a convolution is
    linear in its input channels, it is also the sum of :meth:`local_term`
    and :meth:`global_term`, which lets G<->L keep only class-sized maps per
    patch while G waits for every patch.
    """

    def __init__(self, num_classes: int, channels: int = PS3_CHANNELS) -> None:
        """Build the layer for two ``channels``-channel inputs."""
        super().__init__()
        self.channels = channels
        self.conv = nn.Conv2d(2 * channels, num_classes, kernel_size=3, padding=1)
        init_decoder_conv(self.conv)

    def forward(self, local: Tensor, global_: Tensor) -> Tensor:
        """Logits from L's ps3 and G's cropped ps3 (same size)."""
        return self.conv(torch.cat([local, global_], 1))

    def local_term(self, local: Tensor) -> Tensor:
        """Return the contribution of L's ps3 (without the bias)."""
        return F.conv2d(local, self.conv.weight[:, :self.channels], None, padding=1)

    def global_term(self, global_: Tensor) -> Tensor:
        """Return the contribution of G's cropped ps3, plus the bias."""
        return F.conv2d(global_, self.conv.weight[:, self.channels:], self.conv.bias, padding=1)


class GLNet(nn.Module):
    """Collaborative Global-Local Network (Chen et al., CVPR 2019).

    Attributes:
        global_branch: G (encoder + FPN with its doubled layers).
        local_branch: L (encoder + FPN with its doubled layers).
        aggregation: The final 3x3 conv over L's and G's ps3.
        fixed_global_branch: The frozen stage-1 copy of G that feeds L in
            ``BIDIRECTIONAL`` mode and predicts alone in ``GLOBAL`` mode, or None.
        frozen_parts: Names in :data:`PARTS` kept frozen and in eval mode.

    """

    def __init__(self, num_classes: int, backbone: str = "resnet50", in_channels: int = 3,
                 weights: str | os.PathLike | None = None, fixed_global: bool = False) -> None:
        """Build the network.

        Args:
            num_classes: Number of classes K.
            backbone: ``resnet18``, ``resnet34`` or ``resnet50``.
            in_channels: Number of input bands.
            weights: Encoder initialisation: None (random), ``"imagenet"``
                (torchvision's cache) or the path of a torchvision ResNet
                ``state_dict``.
            fixed_global: Also build the frozen copy of G (a copy of G's
                initial weights) that ``BIDIRECTIONAL`` mode needs.

        Raises:
            InputError: Bad ``num_classes``, ``backbone`` or ``in_channels``.
            WeightsNotFoundError: ``weights`` asked for a missing file.

        """
        super().__init__()
        if not isinstance(num_classes, int) or num_classes < 1:
            raise InputError(f"num_classes={num_classes!r}; expected a positive integer")
        self.num_classes = num_classes
        self.backbone = backbone
        self.in_channels = in_channels
        self.frozen_parts: tuple[str, ...] = ()
        #: The dtype :meth:`for_inference` prepared the network for, or None.
        self.inference_dtype: torch.dtype | None = None
        self.global_branch = Branch(backbone, in_channels, num_classes, weights)
        self.local_branch = Branch(backbone, in_channels, num_classes, weights)
        self.aggregation = Aggregation(num_classes)
        self.register_module("fixed_global_branch", None)
        if fixed_global:
            self.freeze_global_copy()

    # -- training helpers --------------------------------------------------------------------

    def freeze_global_copy(self) -> None:
        """Copy G's current encoder and plain FPN layers into the frozen copy.

        Creates :attr:`fixed_global_branch` if needed. Call it once G is
        trained (stage 1), before training G with L's maps (stage 3).
        """
        if self.fixed_global_branch is None:
            self.fixed_global_branch = Branch(self.backbone, self.in_channels, self.num_classes,
                                              shared=False)
        fixed = self.fixed_global_branch
        wanted = fixed.state_dict()
        fixed.load_state_dict({k: v for k, v in self.global_branch.state_dict().items()
                               if k in wanted})
        device = next(self.global_branch.parameters()).device
        fixed.to(device).requires_grad_(False).eval()

    def set_trainable(self, parts: Iterable[str]) -> None:
        """Train only ``parts`` (names in :data:`PARTS`); freeze the others.

        Frozen parts get ``requires_grad=False`` and stay in eval mode (batch
        norm uses its running statistics) even after ``model.train()``.

        Raises:
            InputError: A name not in :data:`PARTS`.

        """
        parts = set(parts)
        unknown = sorted(parts - set(PARTS))
        if unknown:
            raise InputError(f"unknown GLNet parts {unknown}; expected names among "
                             f"{', '.join(PARTS)}")
        for name in PARTS:
            getattr(self, name).requires_grad_(name in parts)
        if self.fixed_global_branch is not None:
            self.fixed_global_branch.requires_grad_(False)
        self.frozen_parts = tuple(name for name in PARTS if name not in parts)
        self.train(self.training)

    def train(self, mode: bool = True) -> GLNet:
        """Set train/eval mode; frozen parts and the fixed G copy stay in eval.

        Raises:
            InputError: Training mode asked of a network prepared for
                inference (:meth:`for_inference`).

        """
        if mode and self.inference_dtype is not None:
            raise InputError("this GLNet was prepared for inference (batch norm folded, "
                             f"{self.inference_dtype} weights); load the checkpoint again to "
                             "train it")
        super().train(mode)
        for name in self.frozen_parts:
            getattr(self, name).eval()
        if self.fixed_global_branch is not None:
            self.fixed_global_branch.eval()
        return self

    # -- inference ---------------------------------------------------------------------------

    def for_inference(self, dtype: torch.dtype = torch.float32,
                      channels_last: bool = True) -> GLNet:
        """Prepare the network for prediction only, in place, and return it.

        Batch norms are folded into their convolutions
        (:func:`~glnet_geo.models.fusion.fold_batch_norm`), the weights are
        cast to ``dtype`` and, with ``channels_last``, stored (and the inputs
        put) in the channels-last memory format, which oneDNN and cuDNN
        convolve faster. The network then stays in eval mode without
        gradients; it can no longer be trained. glibc's allocator is told to
        reuse the memory each patch frees
        (:func:`~glnet_geo.allocator.keep_freed_memory`, for the process).

        Args:
            dtype: The dtype the layers compute in (inputs are cast to it;
                outputs come in it).
            channels_last: Use the channels-last memory format.

        """
        keep_freed_memory()
        self.eval().requires_grad_(False)
        fold_batch_norm(self, dtype)
        memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.to(dtype=dtype, memory_format=memory_format)
        for tensor in itertools.chain(self.parameters(), self.buffers()):
            # a tensor that .to() kept may be a view of a file the checkpoint was mapped
            # from (load_checkpoint), which would keep the whole file's pages resident
            tensor.data = tensor.data.clone(memory_format=torch.preserve_format)
        for branch in (self.global_branch, self.local_branch, self.fixed_global_branch):
            if branch is not None:
                branch.memory_format = memory_format
        self.inference_dtype = dtype
        return self

    @property
    def global_only_branch(self) -> Branch:
        """The G that ``GLOBAL`` mode runs: a complete network on the global image alone.

        After stage 3 the trained G's plain FPN layers are stale (stage 3 trains
        its doubled layers, which need L's maps), so a network with the frozen
        stage-1 copy runs that copy, exactly the stage-1 checkpoint's G.
        """
        if self.fixed_global_branch is not None:
            return self.fixed_global_branch
        return self.global_branch

    def forward(self, global_image: Tensor | None, patches: Tensor | None,
                boxes: Tensor | None, mode: GLNetMode | str = GLNetMode.GLOBAL_TO_LOCAL,
                scene_shape: Sequence[int] | None = None) -> GLNetOutput:
        """Segment one scene: its global view and all its patches.

        Args:
            global_image: ``(1, C, Hg, Wg)`` the downsampled scene (unused in
                ``LOCAL``); in ``GLOBAL`` mode, which needs nothing else,
                ``(B, C, Hg, Wg)``: the views of ``B`` scenes at once.
            patches: ``(N, C, P, P)`` full-resolution patches (unused in
                ``GLOBAL``).
            boxes: ``(N, 4)`` float: top, left, height, width of each patch
                as fractions of the scene.
            mode: A :class:`GLNetMode`.
            scene_shape: ``(H, W)`` of the scene in pixels, used by
                ``BIDIRECTIONAL`` to count overlaps; default
                ``round(P / box height), round(P / box width)`` of box 0.

        Returns:
            The logits of the mode and the branches' own logits.

        Raises:
            InputError: Wrong ranks, channel counts or box values.

        """
        mode = GLNetMode.parse(mode)
        if mode is GLNetMode.GLOBAL:
            _check_images(global_image, "global_image", self.in_channels)
            out = self.global_only_branch(global_image)
            return GLNetOutput(logits=out.logits, global_logits=out.logits)
        _check_images(patches, "patches", self.in_channels)
        run = _SceneRun(self, mode, global_image, boxes, scene_shape, with_fmreg=True)
        (part,) = run.parts([patches])
        return GLNetOutput(logits=part.logits, global_logits=run.global_logits,
                           local_logits=part.local_logits, fmreg=part.fmreg)

    def iter_scene(self, global_image: Tensor | None, boxes: Tensor,
                   patch_batches: Iterable[Tensor],
                   mode: GLNetMode | str = GLNetMode.GLOBAL_TO_LOCAL,
                   scene_shape: Sequence[int] | None = None,
                   global_output: BranchOutput | None = None) -> Iterator[ScenePart]:
        """Segment one scene whose patches arrive in sub-batches.

        G runs once, before the first batch is read. In ``LOCAL``,
        ``AGGREGATE`` and ``GLOBAL_TO_LOCAL`` each batch's logits are yielded
        as soon as it is consumed. In ``BIDIRECTIONAL`` every batch is consumed
        first (L's maps merged at G's size; per patch only L's logits and its
        class-sized aggregation term are kept), then G runs and the aggregated
        logits are yielded, one part per batch. Call it under
        :func:`torch.inference_mode` for prediction.

        Args:
            global_image: ``(1, C, Hg, Wg)`` (None allowed in ``LOCAL``).
            boxes: ``(N, 4)`` boxes of all patches, in order.
            patch_batches: Iterable (may be a lazy generator) of
                ``(n_i, C, P, P)`` tensors in the order of ``boxes``,
                ``sum(n_i) == N``.
            mode: Any mode but ``GLOBAL``.
            scene_shape: As in :meth:`forward`.
            global_output: The output of the G that runs before the patches,
                if the caller has it already, so that it does not run twice:
                ``model.global_branch(global_image)`` in ``AGGREGATE`` and
                ``GLOBAL_TO_LOCAL``, ``model.fixed_global_branch(global_image)``
                in ``BIDIRECTIONAL``.

        Yields:
            One :class:`ScenePart` per batch, in order.

        Raises:
            InputError: Bad inputs, ``GLOBAL`` mode, or a patch count that
                differs from the number of boxes.

        """
        mode = GLNetMode.parse(mode)
        if mode is GLNetMode.GLOBAL:
            raise InputError("iter_scene yields per-patch logits and GLOBAL mode has none; "
                             "call model(global_image, None, None, mode='global') instead")
        return _SceneRun(self, mode, global_image, boxes, scene_shape,
                         global_output=global_output).parts(patch_batches)


class _SceneRun:
    """One scene through GLNet: the global pass, then the patches batch by batch."""

    def __init__(self, model: GLNet, mode: GLNetMode, global_image: Tensor | None,
                 boxes: Any, scene_shape: Sequence[int] | None, with_fmreg: bool = False,
                 global_output: BranchOutput | None = None) -> None:
        self.model = model
        self.mode = mode
        self.boxes = _parse_boxes(boxes)
        self.scene_shape = _parse_scene_shape(scene_shape)
        self.with_fmreg = with_fmreg
        self.global_image = global_image
        self.global_output = global_output
        self.global_logits: Tensor | None = None
        self.global_out: BranchOutput | None = None
        self.shared_global: FeatureMaps | None = None
        if mode is not GLNetMode.LOCAL:
            _check_images(global_image, "global_image", model.in_channels, single=True)
        if mode is GLNetMode.BIDIRECTIONAL:
            if model.fixed_global_branch is None:
                raise InputError("bidirectional mode needs the frozen stage-1 copy of G; build "
                                 "GLNet(fixed_global=True) or call model.freeze_global_copy()")
        elif mode is not GLNetMode.LOCAL:
            self.global_out = (global_output if global_output is not None
                               else model.global_branch(global_image))
            self.global_logits = self.global_out.logits
            self.shared_global = self.global_out.maps.map(Tensor.detach)

    def parts(self, patch_batches: Iterable[Tensor]) -> Iterator[ScenePart]:
        if self.mode is GLNetMode.BIDIRECTIONAL:
            yield from self._bidirectional_parts(patch_batches)
            return
        for index, batch in self._batches(patch_batches):
            yield self._local_part(index, batch)

    def _batches(self, patch_batches: Iterable[Tensor]) -> Iterator[tuple[slice, Tensor]]:
        total = len(self.boxes)
        start = 0
        for batch in patch_batches:
            _check_images(batch, "patch batch", self.model.in_channels)
            stop = start + batch.shape[0]
            if stop > total:
                raise InputError(f"patch_batches gave more than {total} patches for {total} "
                                 "boxes; give exactly one box per patch")
            if self.scene_shape is None:
                _, _, height, width = self.boxes[0]
                self.scene_shape = (round(batch.shape[-2] / height),
                                    round(batch.shape[-1] / width))
            yield slice(start, stop), batch
            start = stop
        if start != total:
            raise InputError(f"patch_batches gave {start} patches for {total} boxes; give "
                             "exactly one box per patch")

    def _local_part(self, index: slice, patches: Tensor) -> ScenePart:
        model, boxes = self.model, self.boxes[index]
        if self.mode is GLNetMode.GLOBAL_TO_LOCAL:
            local = model.local_branch.forward_with_crops(patches, self.shared_global, boxes)
        else:
            local = model.local_branch(patches)
        if self.mode is GLNetMode.LOCAL:
            return ScenePart(index, local.logits, local.logits)
        global_ps3 = crop_resize(self.global_out.ps3, boxes, local.ps3.shape[-2:])
        logits = model.aggregation(local.ps3, global_ps3)
        fmreg = feature_map_regularizer(local.ps3, global_ps3) if self.with_fmreg else None
        return ScenePart(index, logits, local.logits, fmreg)

    def _bidirectional_parts(self, patch_batches: Iterable[Tensor]) -> Iterator[ScenePart]:
        model = self.model
        if self.global_output is not None:
            fixed_maps = self.global_output.maps
        else:
            with torch.no_grad():
                fixed_maps = model.fixed_global_branch(self.global_image).maps
        merger = LocalMapMerger(fixed_maps)
        pending = []
        for index, batch in self._batches(patch_batches):
            boxes = self.boxes[index]
            local = model.local_branch.forward_with_crops(batch, fixed_maps, boxes)
            merger.add(local.maps, boxes)
            pending.append((index, model.aggregation.local_term(local.ps3), local.logits))
            del local
        merged = merger.average(self.boxes, self.scene_shape)
        del merger
        global_out = model.global_branch(self.global_image, merged)
        self.global_logits = global_out.logits
        for index, local_term, local_logits in pending:
            global_ps3 = crop_resize(global_out.ps3, self.boxes[index], local_term.shape[-2:])
            logits = local_term + model.aggregation.global_term(global_ps3)
            yield ScenePart(index, logits, local_logits)


def _check_images(x: Any, name: str, in_channels: int, single: bool = False) -> None:
    """Raise InputError unless ``x`` is a float ``(B, in_channels, H, W)`` tensor."""
    batch = "1" if single else "N"
    expected = f"({batch}, {in_channels}, H, W)"
    if not isinstance(x, Tensor):
        raise InputError(f"{name} is {type(x).__name__}; expected a float tensor {expected}")
    if x.ndim != 4 or (single and x.shape[0] != 1) or x.shape[0] == 0:
        raise InputError(f"{name} has shape {tuple(x.shape)}; expected {expected}")
    if x.shape[1] != in_channels:
        raise InputError(f"{name} has {x.shape[1]} channels; this GLNet takes {in_channels} "
                         "bands (select the checkpoint's bands)")
    if not x.is_floating_point():
        raise InputError(f"{name} has dtype {x.dtype}; expected a float tensor (normalise "
                         "the raw values first)")


def _parse_boxes(boxes: Any) -> list[Box]:
    """Boxes as a list of float tuples; raise InputError unless valid."""
    if boxes is None:
        raise InputError("boxes is None; expected an (N, 4) float tensor of top, left, "
                         "height, width fractions (see glnet_geo.io.grid.boxes_from_windows)")
    t = torch.as_tensor(boxes)
    if t.ndim != 2 or t.shape[1] != 4 or t.shape[0] == 0:
        raise InputError(f"boxes have shape {tuple(t.shape)}; expected (N, 4) with N >= 1: "
                         "top, left, height, width fractions of the scene")
    if not t.is_floating_point():
        raise InputError(f"boxes have dtype {t.dtype}; expected floats (fractions of the scene)")
    parsed = [tuple(b) for b in t.detach().cpu().double().tolist()]
    for i, (top, left, height, width) in enumerate(parsed):
        finite = all(v == v and abs(v) != float("inf") for v in (top, left, height, width))
        if (not finite or top < 0 or left < 0 or height <= 0 or width <= 0
                or top + height > 1 + BOX_TOLERANCE or left + width > 1 + BOX_TOLERANCE):
            raise InputError(
                f"boxes[{i}] = (top {top:g}, left {left:g}, height {height:g}, width "
                f"{width:g}) is outside the scene; expected fractions in [0, 1] with "
                "top + height <= 1 and left + width <= 1 (pad scenes smaller than a patch)")
    return parsed


def _parse_scene_shape(scene_shape: Sequence[int] | None) -> tuple[int, int] | None:
    if scene_shape is None:
        return None
    try:
        height, width = (int(v) for v in scene_shape)
    except (TypeError, ValueError):
        raise InputError(f"scene_shape={scene_shape!r}; expected (height, width) in "
                         "pixels") from None
    if height < 1 or width < 1:
        raise InputError(f"scene_shape={scene_shape!r}; expected positive (height, width)")
    return height, width
