"""ResNet encoders behind a small contract: ``out_channels`` of c2..c5.

An encoder maps an image ``(B, C, H, W)`` to the four feature maps c2..c5 at
strides 4, 8, 16 and 32 (the outputs of ResNet's ``layer1``..``layer4``). Its
``out_channels`` attribute lists their channel counts, so any encoder pairs
with :class:`glnet_geo.models.fpn.FPN`.

Pretrained ImageNet weights are read from a local file, never downloaded: pass
``weights="imagenet"`` to use torchvision's cache
(``torch.hub.get_dir()/checkpoints/<torchvision file name>``), or the path of
a torchvision ResNet ``state_dict``.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import Tensor, nn
from torchvision import models

from glnet_geo.errors import InputError, WeightsNotFoundError

#: Backbone name -> (torchvision builder, ImageNet weights enum member).
BACKBONES = {
    "resnet18": (models.resnet18, models.ResNet18_Weights.IMAGENET1K_V1),
    "resnet34": (models.resnet34, models.ResNet34_Weights.IMAGENET1K_V1),
    "resnet50": (models.resnet50, models.ResNet50_Weights.IMAGENET1K_V1),
}


def imagenet_weights_path(backbone: str) -> Path:
    """Where torchvision caches the ImageNet weights of ``backbone``.

    Args:
        backbone: One of :data:`BACKBONES`.

    Returns:
        ``torch.hub.get_dir()/checkpoints/<file name of torchvision's URL>``.

    """
    _check_backbone(backbone)
    url = BACKBONES[backbone][1].url
    return Path(torch.hub.get_dir()) / "checkpoints" / url.rsplit("/", 1)[-1]


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


class ResNetEncoder(nn.Module):
    """A torchvision ResNet without its pooling and classifier.

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
            weights: ``None`` (random), ``"imagenet"`` (torchvision's cache)
                or the path of a torchvision ResNet ``state_dict``.

        Raises:
            InputError: Unknown backbone or bad ``in_channels``.
            WeightsNotFoundError: The weights file does not exist.

        """
        super().__init__()
        _check_backbone(backbone)
        if not isinstance(in_channels, int) or in_channels < 1:
            raise InputError(f"in_channels={in_channels!r}; expected a positive number of bands")
        net = BACKBONES[backbone][0](weights=None)
        if weights is not None:
            _load_into(net, backbone, weights)
        if in_channels != 3:
            old = net.conv1
            net.conv1 = nn.Conv2d(in_channels, old.out_channels, kernel_size=old.kernel_size,
                                  stride=old.stride, padding=old.padding, bias=False)
            if weights is not None:
                with torch.no_grad():
                    net.conv1.weight.copy_(adapt_first_conv(old.weight, in_channels))
        self.conv1, self.bn1, self.relu, self.maxpool = net.conv1, net.bn1, net.relu, net.maxpool
        self.layer1, self.layer2, self.layer3, self.layer4 = (
            net.layer1, net.layer2, net.layer3, net.layer4)
        self.backbone = backbone
        self.in_channels = in_channels
        self.out_channels: tuple[int, int, int, int] = tuple(
            _last_channels(layer) for layer in (net.layer1, net.layer2, net.layer3, net.layer4))

    def forward(self, x: Tensor) -> list[Tensor]:
        """Return ``[c2, c3, c4, c5]`` for ``x`` of shape ``(B, C, H, W)``."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        c2 = self.layer1(x)
        c3 = self.layer2(c2)
        c4 = self.layer3(c3)
        c5 = self.layer4(c4)
        return [c2, c3, c4, c5]


def _load_into(net: nn.Module, backbone: str, weights: str | os.PathLike) -> None:
    """Load ImageNet weights for ``backbone`` from disk into ``net`` (classifier excepted).

    Raises:
        WeightsNotFoundError: The file does not exist (nothing is downloaded).
        InputError: The file is not a ``state_dict`` of that ResNet.

    """
    path = imagenet_weights_path(backbone) if str(weights) == "imagenet" else Path(weights)
    expected_name = imagenet_weights_path(backbone).name
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
    try:
        result = net.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # shape mismatch: another depth of ResNet
        first = str(exc).strip().splitlines()[-1].strip()
        raise InputError(f"{path} does not fit {backbone} ({first}); give torchvision's "
                         f"{expected_name}") from None
    missing = [k for k in result.missing_keys if not k.startswith("fc.")]
    if missing or result.unexpected_keys:
        what = f"missing {missing[:3]}" if missing else f"unexpected {result.unexpected_keys[:3]}"
        raise InputError(f"{path} is not a torchvision {backbone} state_dict ({what}); give "
                         f"torchvision's {expected_name}")


def _check_backbone(backbone: str) -> None:
    if backbone not in BACKBONES:
        raise InputError(f"unknown backbone {backbone!r}; expected one of "
                         f"{', '.join(BACKBONES)}")


def _last_channels(layer: nn.Sequential) -> int:
    block = layer[-1]
    last_bn = block.bn3 if hasattr(block, "bn3") else block.bn2
    return last_bn.num_features
