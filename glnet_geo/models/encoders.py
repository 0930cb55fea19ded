"""ResNet encoders behind a small contract: ``out_channels`` of c2..c5.

An encoder maps an image ``(B, C, H, W)`` to the four feature maps c2..c5 at
strides 4, 8, 16 and 32 (the outputs of ResNet's ``layer1``..``layer4``). Its
``out_channels`` attribute lists their channel counts, so any encoder pairs
with :class:`glnet_geo.models.fpn.FPN`.

Pretrained weights (``weights``):

- ``"imagenet"``: torchvision's ImageNet weights through its weights API
  (``ResNet50_Weights.IMAGENET1K_V1`` ...) and its cache,
  ``torch.hub.get_dir()/checkpoints/<file name>``: read from there, downloaded
  there when missing and online; offline, one line names the file and where
  to put it.
- ``"torchgeo:<WeightsEnum>"``, e.g. ``"torchgeo:ResNet50_Weights.SENTINEL2_RGB_MOCO"``:
  torchgeo's pretrained remote-sensing ResNets, through the same cache; the
  weights' band count (``meta["in_chans"]``) must be the model's.
- the path of a torchvision ResNet ``state_dict``.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import urllib.error
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from glnet_geo.errors import InputError, WeightsNotFoundError
from glnet_geo.models.resnet import RESNETS, ResNetTrunk

log = logging.getLogger(__name__)

#: Backbone name -> its depth of ResNet (:class:`glnet_geo.models.resnet.ResNetSpec`).
BACKBONES = RESNETS


#: ``weights`` value of torchvision's ImageNet weights, and prefix of torchgeo's.
IMAGENET = "imagenet"
TORCHGEO_PREFIX = "torchgeo:"


def cached_weights_path(weights: Any) -> Path:
    """Where torch.hub caches a torchvision/torchgeo ``WeightsEnum`` member's file."""
    return Path(torch.hub.get_dir()) / "checkpoints" / weights.url.rsplit("/", 1)[-1]


def imagenet_weights_path(backbone: str) -> Path:
    """Where torchvision caches the ImageNet weights of ``backbone``.

    Args:
        backbone: One of :data:`BACKBONES`.

    Returns:
        ``torch.hub.get_dir()/checkpoints/<file name of torchvision's URL>``.

    """
    return cached_weights_path(imagenet_weights(backbone))


def imagenet_weights(backbone: str) -> Any:
    """Return torchvision's ``IMAGENET1K_V1`` ``WeightsEnum`` member for ``backbone``."""
    _check_backbone(backbone)
    from torchvision import models  # only here: importing torchvision costs 1.2 s

    return getattr(models, BACKBONES[backbone].weights_enum).IMAGENET1K_V1


def torchgeo_weights(name: str, backbone: str) -> Any:
    """Look up a torchgeo ``WeightsEnum`` member such as ``ResNet50_Weights.SENTINEL2_RGB_MOCO``.

    Raises:
        InputError: Not a torchgeo ResNet weights name, or weights of another backbone.

    """
    import torchgeo.models

    enum_name, _, member = name.partition(".")
    enum = getattr(torchgeo.models, enum_name, None) if enum_name.startswith("ResNet") else None
    if enum is None or not member:
        raise InputError(f"--weights {TORCHGEO_PREFIX}{name} is not a torchgeo ResNet weights "
                         "name; give <Enum>.<MEMBER>, e.g. "
                         f"{TORCHGEO_PREFIX}ResNet50_Weights.SENTINEL2_RGB_MOCO")
    try:
        weights = enum[member]
    except KeyError:
        known = ", ".join(m.name for m in list(enum)[:4])
        raise InputError(f"torchgeo's {enum_name} has no {member!r}; pick one of its members "
                         f"(e.g. {known}, ...)") from None
    model = str(weights.meta.get("model", enum_name.removesuffix("_Weights").lower()))
    if model != backbone:
        raise InputError(f"{TORCHGEO_PREFIX}{name} are {model} weights but the backbone is "
                         f"{backbone}; pass --backbone {model} or weights for {backbone}")
    return weights


def download_weights(weights: Any, what: str) -> dict[str, Tensor]:
    """Read a ``WeightsEnum`` member's state_dict from torch.hub's cache, downloading it if missing.

    Raises:
        WeightsNotFoundError: Not cached and the download failed (offline):
            the message names the file and the folder to put it in.

    """
    path = cached_weights_path(weights)
    if path.is_file():
        return torch.load(path, map_location="cpu", weights_only=True)
    log.info("downloading %s weights %s into %s", what, path.name, path.parent)
    try:
        with contextlib.redirect_stderr(io.StringIO()):  # torch.hub's own "Downloading" line
            return weights.get_state_dict(progress=False, check_hash=True, map_location="cpu",
                                          weights_only=True)
    except (urllib.error.URLError, OSError, RuntimeError) as exc:
        reason = getattr(exc, "reason", None) or type(exc).__name__
        raise WeightsNotFoundError(
            f"{what} weights {path.name} are not in the torch.hub cache and could not be "
            f"downloaded ({reason}); put {path.name} (from {weights.url}) in {path.parent}, "
            "or train without --weights") from None


def adapt_first_conv(weight: Tensor, in_channels: int) -> Tensor:
    """Turn a 3-band (RGB) first-conv kernel into one for ``in_channels`` bands.

    The rule keeps what the pretrained network does on a grey image: an input
    whose bands are all equal gives exactly the activations the RGB network
    gives on that grey image.

    - 1 or 2 bands: each band gets the sum of the R, G and B kernels divided by
      the number of bands.
    - more than 3 bands: bands 1-3 keep the R, G and B kernels, every further
      band gets their mean, and all kernels are scaled by ``3 / in_channels``.

    Args:
        weight: ``(out, 3, k, k)`` kernel.
        in_channels: Number of input bands.

    Returns:
        ``(out, in_channels, k, k)`` kernel.

    """
    if in_channels == 3:
        return weight
    if in_channels < 3:
        return weight.sum(1, keepdim=True).repeat(1, in_channels, 1, 1) / in_channels
    extra = weight.mean(1, keepdim=True).repeat(1, in_channels - 3, 1, 1)
    return torch.cat([weight, extra], 1) * (3.0 / in_channels)


class ResNetEncoder(ResNetTrunk):
    """A ResNet without its pooling and classifier, with its pretrained weights.

    Its parameter names are those of torchvision (``conv1``, ``bn1``,
    ``layer1``..``layer4``), which are also the official GLNet's.

    Attributes:
        out_channels: Channels of c2, c3, c4, c5.

    """

    def __init__(self, backbone: str = "resnet50", in_channels: int = 3,
                 weights: str | os.PathLike | None = None) -> None:
        """Build the encoder.

        Args:
            backbone: ``resnet18``, ``resnet34`` or ``resnet50``.
            in_channels: Number of input bands.
            weights: ``None`` (random), ``"imagenet"`` (torchvision's),
                ``"torchgeo:<WeightsEnum>"`` (torchgeo's, for ``in_channels``
                bands) or the path of a torchvision ResNet ``state_dict``.

        Raises:
            InputError: Unknown backbone, bad ``in_channels``, or torchgeo
                weights for another band count or backbone.
            WeightsNotFoundError: The weights are not on disk and cannot be
                downloaded.

        """
        _check_backbone(backbone)
        if not isinstance(in_channels, int) or in_channels < 1:
            raise InputError(f"in_channels={in_channels!r}; expected a positive number of bands")
        super().__init__(BACKBONES[backbone])
        pretrained_bands = 3
        if weights is not None and os.fspath(weights).startswith(TORCHGEO_PREFIX):
            pretrained_bands = _load_torchgeo(self, backbone, in_channels,
                                              os.fspath(weights)[len(TORCHGEO_PREFIX):])
        elif weights is not None:
            _load_into(self, backbone, weights)
        if in_channels != pretrained_bands:
            old = self.conv1
            self.conv1 = nn.Conv2d(in_channels, old.out_channels, kernel_size=old.kernel_size,
                                   stride=old.stride, padding=old.padding, bias=False)
            if weights is not None:
                with torch.no_grad():
                    self.conv1.weight.copy_(adapt_first_conv(old.weight, in_channels))
        self.backbone = backbone
        self.in_channels = in_channels


def _load_torchgeo(net: nn.Module, backbone: str, in_channels: int, name: str) -> int:
    """Load torchgeo's weights ``name`` into ``net``; return their band count.

    Raises:
        InputError: Weights for another number of bands than ``in_channels``.

    """
    weights = torchgeo_weights(name, backbone)
    bands = int(weights.meta.get("in_chans", 3))
    if bands != in_channels:
        raise InputError(f"{TORCHGEO_PREFIX}{name} takes {bands} bands but the model takes "
                         f"{in_channels}; pick torchgeo weights for {in_channels} bands or "
                         f"train on {bands}-band imagery")
    state = download_weights(weights, f"torchgeo {name}")
    state = {k: v for k, v in state.items() if not k.startswith("fc.")}
    if bands != 3:
        net.conv1 = nn.Conv2d(bands, net.conv1.out_channels, kernel_size=net.conv1.kernel_size,
                              stride=net.conv1.stride, padding=net.conv1.padding, bias=False)
    _load_state(net, backbone, state, f"torchgeo's {name}", f"{TORCHGEO_PREFIX}{name}")
    return bands


def _load_into(net: nn.Module, backbone: str, weights: str | os.PathLike) -> None:
    """Load ImageNet weights for ``backbone`` into ``net`` (classifier excepted).

    Raises:
        WeightsNotFoundError: Not on disk, and (for ``"imagenet"``) no download.
        InputError: The file is not a ``state_dict`` of that ResNet.

    """
    expected_name = imagenet_weights_path(backbone).name
    if str(weights) == IMAGENET:
        state = download_weights(imagenet_weights(backbone), f"ImageNet {backbone}")
        state = {k: v for k, v in state.items() if not k.startswith("fc.")}
        _load_state(net, backbone, state, f"torchvision's {expected_name}", expected_name)
        return
    path = Path(weights)
    if not path.is_file():
        raise WeightsNotFoundError(
            f"ImageNet weights for {backbone} not found at {path}; copy torchvision's "
            f"{expected_name} there (nothing is downloaded) or pass weights=None to train "
            "from random weights")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise InputError(f"{path} is not a torch state_dict ({type(exc).__name__}); give "
                         f"torchvision's {expected_name}") from None
    if not isinstance(state, dict):
        raise InputError(f"{path} holds a {type(state).__name__}, expected a {backbone} "
                         f"state_dict such as torchvision's {expected_name}")
    state = {k: v for k, v in state.items() if not k.startswith("fc.")}
    _load_state(net, backbone, state, f"torchvision's {expected_name}", path)


def _load_state(net: nn.Module, backbone: str, state: dict[str, Tensor], wanted: str,
                name: str | os.PathLike) -> None:
    """Load a ResNet ``state`` (no classifier) into ``net``, naming ``name`` if it does not fit."""
    try:
        result = net.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # shape mismatch: another depth of ResNet
        first = str(exc).strip().splitlines()[-1].strip()
        raise InputError(f"{name} does not fit {backbone} ({first}); give {wanted}") from None
    missing = [k for k in result.missing_keys if not k.startswith("fc.")]
    if missing or result.unexpected_keys:
        what = f"missing {missing[:3]}" if missing else f"unexpected {result.unexpected_keys[:3]}"
        raise InputError(f"{name} is not a torchvision {backbone} state_dict ({what}); give "
                         f"{wanted}")


def _check_backbone(backbone: str) -> None:
    if backbone not in BACKBONES:
        raise InputError(f"unknown backbone {backbone!r}; expected one of "
                         f"{', '.join(BACKBONES)}")

