"""ResNet-18/34/50 trunks, layer for layer those of torchvision.

The encoders are torchvision's ResNets without their pooling and classifier:
the same modules under the same names (``conv1``, ``bn1``, ``layer1``..
``layer4``, and ``convN``/``bnN``/``downsample`` in the blocks, the stride
in a bottleneck's 3x3 conv), the same initialisation, so that torchvision's
and torchgeo's ``state_dict``s and the official GLNet checkpoints load as
they are (``tests/models/test_resnet.py`` checks it against torchvision).

They are defined here rather than built by ``torchvision.models`` because
importing torchvision imports ``torch._dynamo`` (through ``torchvision.ops``):
1.2 s and 160 MiB in every ``glnet-geo predict`` process and Dask worker,
for a network that needs none of it (``benchmarks/RESULTS.md``). torchvision
is still what serves the ImageNet weights (:mod:`glnet_geo.models.encoders`),
imported only when they are asked for.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn


def _conv3x3(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)


def _conv1x1(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    """Two 3x3 convs and a shortcut (ResNet-18 and -34)."""

    expansion = 1

    def __init__(self, in_channels: int, channels: int, stride: int = 1,
                 downsample: nn.Module | None = None) -> None:
        """Build the block: ``in_channels`` -> ``channels``, ``stride`` in the first conv."""
        super().__init__()
        self.conv1 = _conv3x3(in_channels, channels, stride)
        self.bn1 = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = _conv3x3(channels, channels)
        self.bn2 = nn.BatchNorm2d(channels)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        """Return ``relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))``."""
        out = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
        out += x if self.downsample is None else self.downsample(x)
        return self.relu(out)


class Bottleneck(nn.Module):
    """1x1, 3x3 (strided) and 1x1 convs and a shortcut (ResNet-50)."""

    expansion = 4

    def __init__(self, in_channels: int, channels: int, stride: int = 1,
                 downsample: nn.Module | None = None) -> None:
        """Build the block: ``in_channels`` -> ``4 * channels``, ``stride`` in the 3x3 conv."""
        super().__init__()
        self.conv1 = _conv1x1(in_channels, channels)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = _conv3x3(channels, channels, stride)
        self.bn2 = nn.BatchNorm2d(channels)
        self.conv3 = _conv1x1(channels, channels * self.expansion)
        self.bn3 = nn.BatchNorm2d(channels * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        """Return the three convs' output plus the shortcut, through a ReLU."""
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn3(self.conv3(self.relu(self.bn2(self.conv2(out)))))
        out += x if self.downsample is None else self.downsample(x)
        return self.relu(out)


@dataclass(frozen=True)
class ResNetSpec:
    """One depth of ResNet.

    Attributes:
        block: The residual block.
        layers: Blocks in ``layer1``..``layer4``.
        weights_enum: Name of its weights enum in ``torchvision.models``
            (e.g. ``"ResNet50_Weights"``), which serves its ImageNet weights.

    """

    block: type[BasicBlock | Bottleneck]
    layers: tuple[int, int, int, int]
    weights_enum: str


#: Channels of the blocks of ``layer1``..``layer4`` (times the block's ``expansion`` at their
#: outputs).
STAGE_CHANNELS = (64, 128, 256, 512)

#: Backbone name -> its depth of ResNet.
RESNETS = {
    "resnet18": ResNetSpec(BasicBlock, (2, 2, 2, 2), "ResNet18_Weights"),
    "resnet34": ResNetSpec(BasicBlock, (3, 4, 6, 3), "ResNet34_Weights"),
    "resnet50": ResNetSpec(Bottleneck, (3, 4, 6, 3), "ResNet50_Weights"),
}


class ResNetTrunk(nn.Module):
    """A ResNet's stem and four stages, giving c2..c5 (strides 4 to 32).

    Attributes:
        out_channels: Channels of c2, c3, c4, c5.

    """

    def __init__(self, spec: ResNetSpec, in_channels: int = 3) -> None:
        """Build the trunk of ``spec`` for ``in_channels`` bands, initialised as torchvision's."""
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        channels_in = 64
        stages = []
        for i, (blocks, channels) in enumerate(zip(spec.layers, STAGE_CHANNELS, strict=True)):
            stride = 1 if i == 0 else 2
            out = channels * spec.block.expansion
            downsample = None
            if stride != 1 or channels_in != out:
                downsample = nn.Sequential(_conv1x1(channels_in, out, stride),
                                           nn.BatchNorm2d(out))
            stage = [spec.block(channels_in, channels, stride, downsample)]
            stage += [spec.block(out, channels) for _ in range(1, blocks)]
            stages.append(nn.Sequential(*stage))
            channels_in = out
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.out_channels: tuple[int, int, int, int] = tuple(
            channels * spec.block.expansion for channels in STAGE_CHANNELS)
        if self.conv1.weight.is_meta:  # no values to set (and its normal_ imports torch._dynamo)
            return
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def forward(self, x: Tensor) -> list[Tensor]:
        """Return ``[c2, c3, c4, c5]`` for ``x`` of shape ``(B, C, H, W)``."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        c2 = self.layer1(x)
        c3 = self.layer2(c2)
        c4 = self.layer3(c3)
        c5 = self.layer4(c4)
        return [c2, c3, c4, c5]
