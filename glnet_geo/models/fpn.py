"""The FPN decoder of a GLNet branch, with the layers that take shared maps.

The decoder follows the official GLNet code layer for layer:

- top-down: ``toplayer`` (1x1 on c5) and ``latlayer1..3`` (1x1 on c4, c3, c2),
  each coarser map bilinearly upsampled to the lateral's size and added; the
  four results are the *ps0* maps ``[p5, p4, p3, p2]``;
- two smoothing stages of 3x3 convs, ``smoothN_1`` (256 -> 256, the *ps1*
  maps) and ``smoothN_2`` (256 -> 128, the *ps2* maps), ``N`` = 1..4 for
  p5..p2;
- the four ps2 maps bilinearly upsampled to p2's size (stride 4) and
  concatenated: *ps3* (512 channels); ``classify`` (3x3) gives the logits.

With ``shared=True`` the decoder also has a doubled twin of every layer above
(``toplayer_ext`` ... ``smooth4_2_ext``), which reads the concatenation of its
own map and the other branch's map of the same layer, and ``smooth``
(1024 -> 512) that turns the concatenated ps2 maps (own and shared, 1024
channels) into ps3. :meth:`FPN.forward` uses either every plain layer or every
doubled one. ``classify`` serves both paths.

In the global branch the doubled layers take the local maps merged at the
global size (G<->L); in the local branch they take the crops of the global
maps (G->L). The official local FPN only has the doubled layers; its
``toplayer`` is our local ``toplayer_ext`` and so on
(see :mod:`glnet_geo.models.official`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

#: Channels of the top-down maps (ps0 and ps1) and of the ps2 maps.
PYRAMID_CHANNELS = 256
SMOOTH_CHANNELS = 128
#: Channels of ps3, the concatenation of the four ps2 maps.
PS3_CHANNELS = 4 * SMOOTH_CHANNELS


@dataclass
class FeatureMaps:
    """The maps a branch shares with the other one, layer by layer.

    Attributes:
        c: Encoder maps ``[c2, c3, c4, c5]`` (strides 4 to 32).
        ps0: Top-down maps ``[p5, p4, p3, p2]``.
        ps1: First smoothing stage, ``[p5, p4, p3, p2]``.
        ps2: Second smoothing stage, ``[p5, p4, p3, p2]``.

    """

    c: list[Tensor]
    ps0: list[Tensor]
    ps1: list[Tensor]
    ps2: list[Tensor]

    def tensors(self) -> list[Tensor]:
        """All 16 maps: c2..c5, then ps0, ps1 and ps2 (p5..p2 each)."""
        return [*self.c, *self.ps0, *self.ps1, *self.ps2]

    @classmethod
    def from_tensors(cls, tensors: Sequence[Tensor]) -> FeatureMaps:
        """Inverse of :meth:`tensors`."""
        t = list(tensors)
        return cls(c=t[0:4], ps0=t[4:8], ps1=t[8:12], ps2=t[12:16])

    def map(self, fn: Callable[[Tensor], Tensor]) -> FeatureMaps:
        """Apply ``fn`` to every map."""
        return FeatureMaps.from_tensors([fn(t) for t in self.tensors()])


@dataclass
class FPNOutput:
    """What the decoder computes for a batch.

    Attributes:
        logits: ``(B, K, H/4, W/4)`` class scores.
        ps0: Top-down maps ``[p5, p4, p3, p2]``.
        ps1: First smoothing stage.
        ps2: Second smoothing stage.
        ps3: ``(B, 512, H/4, W/4)`` last map, input of ``classify``.

    """

    logits: Tensor
    ps0: list[Tensor]
    ps1: list[Tensor]
    ps2: list[Tensor]
    ps3: Tensor


class FPN(nn.Module):
    """The FPN decoder of one GLNet branch (see the module docstring).

    Attributes:
        encoder_channels: Channels of c2..c5 it was built for.
        shared: Whether the doubled (``*_ext``) layers and ``smooth`` exist.

    """

    def __init__(self, encoder_channels: Sequence[int], num_classes: int,
                 shared: bool = True) -> None:
        """Build the decoder.

        Args:
            encoder_channels: ``out_channels`` of the encoder (c2..c5);
                (256, 512, 1024, 2048) for ResNet-50, (64, 128, 256, 512)
                for ResNet-18/34.
            num_classes: Number of output classes.
            shared: Also build the layers that take the other branch's maps.

        """
        super().__init__()
        c2, c3, c4, c5 = encoder_channels
        self.encoder_channels = tuple(encoder_channels)
        self.shared = shared
        for fold, suffix in ((1, ""), (2, "_ext")) if shared else ((1, ""),):
            self.add_module(f"toplayer{suffix}", _conv(c5 * fold, PYRAMID_CHANNELS, 1))
            for i, channels in enumerate((c4, c3, c2), start=1):
                self.add_module(f"latlayer{i}{suffix}",
                                _conv(channels * fold, PYRAMID_CHANNELS, 1))
            for i in range(1, 5):
                self.add_module(f"smooth{i}_1{suffix}",
                                _conv(PYRAMID_CHANNELS * fold, PYRAMID_CHANNELS, 3))
            for i in range(1, 5):
                self.add_module(f"smooth{i}_2{suffix}",
                                _conv(PYRAMID_CHANNELS * fold, SMOOTH_CHANNELS, 3))
        if shared:
            self.smooth = _conv(2 * PS3_CHANNELS, PS3_CHANNELS, 3)
        self.classify = _conv(PS3_CHANNELS, num_classes, 3)
        for module in self.children():
            init_decoder_conv(module)

    def forward(self, features: Sequence[Tensor], shared: FeatureMaps | None = None) -> FPNOutput:
        """Decode encoder maps, optionally with the other branch's maps.

        Args:
            features: ``[c2, c3, c4, c5]`` from the encoder.
            shared: The other branch's maps, already at the sizes of this
                branch's maps (c2..c5 at the sizes of ``features``; p5..p2 at
                the sizes of c5..c2). Given: the doubled layers are used.

        Returns:
            The logits and the intermediate maps.

        """
        ext = shared is not None
        if ext and not self.shared:
            raise RuntimeError("this FPN was built with shared=False; it cannot take shared maps")
        suffix = "_ext" if ext else ""

        def layer(name: str) -> nn.Module:
            return getattr(self, name + suffix)

        def joined(own: Sequence[Tensor], other: Sequence[Tensor] | None) -> list[Tensor]:
            if other is None:
                return list(own)
            return [torch.cat([a, b], 1) for a, b in zip(own, other, strict=True)]

        c2, c3, c4, c5 = joined(features, shared.c if ext else None)
        p5 = layer("toplayer")(c5)
        p4 = _upsample_add(p5, layer("latlayer1")(c4))
        p3 = _upsample_add(p4, layer("latlayer2")(c3))
        p2 = _upsample_add(p3, layer("latlayer3")(c2))
        ps0 = [p5, p4, p3, p2]
        ps1 = [layer(f"smooth{i}_1")(x)
               for i, x in enumerate(joined(ps0, shared.ps0 if ext else None), start=1)]
        ps2 = [layer(f"smooth{i}_2")(x)
               for i, x in enumerate(joined(ps1, shared.ps1 if ext else None), start=1)]
        ps3 = _concatenate(joined(ps2, shared.ps2 if ext else None))
        if ext:
            ps3 = self.smooth(ps3)
        return FPNOutput(logits=self.classify(ps3), ps0=ps0, ps1=ps1, ps2=ps2, ps3=ps3)


def resize(x: Tensor, size: Sequence[int]) -> Tensor:
    """Bilinear resize (``align_corners=False``), the only resampling GLNet uses."""
    return F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=False)


def init_decoder_conv(conv: nn.Conv2d) -> None:
    """Initialise a decoder conv as the official code does: weights N(0, 0.01), bias 0.

    Nothing is done to a conv built on the meta device (a checkpoint's network
    before its weights are assigned), which has no values to set.
    """
    if conv.weight.is_meta:  # its normal_ would also import torch._dynamo (1.1 s)
        return
    nn.init.normal_(conv.weight, mean=0.0, std=0.01)
    nn.init.zeros_(conv.bias)


def _conv(in_channels: int, out_channels: int, kernel_size: int) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2)


def _upsample_add(top: Tensor, lateral: Tensor) -> Tensor:
    return resize(top, lateral.shape[-2:]) + lateral


def _concatenate(maps: Sequence[Tensor]) -> Tensor:
    """Upsample p5, p4, p3 to p2's size and concatenate all four (channels)."""
    *coarse, p2 = maps
    return torch.cat([*(resize(p, p2.shape[-2:]) for p in coarse), p2], 1)
