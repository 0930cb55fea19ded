"""Starting G->L's local branch from a trained local-only model.

Stage 2 trains L from the encoder's starting weights (ImageNet in the
paper). Without ImageNet weights, on a CPU, L has to learn small objects from
scratch while it also learns to use G's maps, and that takes most of stage 2.
:func:`start_local_from` gives stage 2 a head start instead: L takes the
weights of a model trained in ``LOCAL`` mode (L alone, the paper's patch-only
baseline), and every layer that reads G's maps starts by ignoring them:

- each doubled ``*_ext`` layer gets the plain layer's kernel on its own half
  of the input channels and zeros on G's half;
- ``smooth`` (1024 -> 512) starts as the identity on L's maps (its input
  holds L's and G's ps2 maps level by level: L p5, G p5, L p4, ...);
- the aggregation starts as L's ``classify`` on L's half, zeros on G's half.

The network then computes exactly the local-only model's logits, in L's
output and in the aggregated one, and stage 2 only has to learn what G's
maps add. G is not touched.
"""

from __future__ import annotations

import torch
from torch import nn

from glnet_geo.models.fpn import FPN, PS3_CHANNELS, SMOOTH_CHANNELS
from glnet_geo.models.glnet import GLNet


def start_local_from(model: GLNet, local_only: GLNet) -> None:
    """Load ``local_only``'s local branch into ``model`` so G->L starts as L alone.

    Args:
        model: The network whose L starts stage 2 (its G is kept).
        local_only: A network trained in ``LOCAL`` mode, of the same backbone,
            bands and classes.

    """
    model.local_branch.load_state_dict(local_only.local_branch.state_dict())
    fpn = model.local_branch.fpn
    with torch.no_grad():
        for name, plain in _plain_layers(fpn):
            _own_half(getattr(fpn, f"{name}_ext"), plain.weight, plain.bias)
        _identity_on_own_maps(fpn.smooth)
        _own_half(model.aggregation.conv, fpn.classify.weight, fpn.classify.bias)


def _plain_layers(fpn: FPN) -> list[tuple[str, nn.Conv2d]]:
    """List the plain layers that have a doubled ``*_ext`` twin."""
    return [(name, layer) for name, layer in fpn.named_children()
            if hasattr(fpn, f"{name}_ext")]


def _identity_on_own_maps(smooth: nn.Conv2d) -> None:
    """Make ``smooth`` pass L's ps2 maps through and drop G's."""
    out = torch.arange(PS3_CHANNELS)
    level, offset = out // SMOOTH_CHANNELS, out % SMOOTH_CHANNELS
    centre = smooth.kernel_size[0] // 2
    smooth.weight.zero_()
    smooth.bias.zero_()
    smooth.weight[out, 2 * level * SMOOTH_CHANNELS + offset, centre, centre] = 1.0


def _own_half(layer: nn.Conv2d, weight: torch.Tensor, bias: torch.Tensor) -> None:
    """Set ``layer`` to ``weight`` on its first input channels, zero on the rest."""
    layer.weight.zero_()
    layer.weight[:, :weight.shape[1]] = weight
    layer.bias.copy_(bias)
