"""Batch norm folded into the convolution before it, for inference.

In eval mode a batch norm is an affine map per channel, so it can be merged
into the weights and bias of the convolution that feeds it
(:func:`torch.nn.utils.fusion.fuse_conv_bn_eval`): the network computes the
same function (up to float rounding) with one pass over each feature map
fewer.
"""

from __future__ import annotations

import itertools

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval


def fold_batch_norm(module: nn.Module, dtype: torch.dtype | None = None) -> int:
    """Fold every batch norm that directly follows a convolution into it, in place.

    Two layouts are recognised, those of torchvision's ResNets (the encoders
    here): a ``bnN`` next to a ``convN`` in the same module, applied to its
    output (``conv1``/``bn1`` of the stem, ``convN``/``bnN`` of the blocks),
    and a convolution followed by a batch norm in a :class:`torch.nn.Sequential`
    (the blocks' ``downsample``). Each folded batch norm becomes an
    :class:`torch.nn.Identity`.

    Args:
        module: A network in eval mode.
        dtype: Cast each folded convolution to this dtype as soon as it is
            folded (so that a network being cast holds one layer at a time in
            both dtypes, not all of them).

    Returns:
        The number of batch norms folded.

    Raises:
        ValueError: ``module`` is in training mode (the statistics would
            still change).

    """
    if module.training:
        raise ValueError("fold batch norm only in eval mode: call module.eval() first")
    folded = 0
    for parent in list(module.modules()):
        children = dict(parent.named_children())
        if isinstance(parent, nn.Sequential):
            names = list(children)
            pairs = list(itertools.pairwise(names))
        else:
            pairs = [(f"conv{name[2:]}", name) for name in children if name.startswith("bn")]
        for conv_name, bn_name in pairs:
            conv, bn = children.get(conv_name), children.get(bn_name)
            if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                setattr(parent, conv_name, fuse_conv_bn_eval(conv, bn).to(dtype=dtype))
                setattr(parent, bn_name, nn.Identity())
                folded += 1
    return folded
