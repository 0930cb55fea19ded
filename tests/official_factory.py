"""State_dicts in the key layout of the official GLNet network, as each training stage leaves it.

The official code initialises every FPN bias (and the aggregation's) at zero and each stage trains
only some layers: stage 1 (``global``) G's encoder and plain FPN layers; stage 2
(``global2local``) L and the aggregation, G frozen; stage 3 (``local2global``) G's encoder, its
doubled ``*_ext`` layers, ``smooth``, ``classify`` and the aggregation, L frozen. These builders
reproduce that pattern with random values, so stage detection and import can be tested offline.
"""

from __future__ import annotations

import torch
import torchvision

K = 7
LATERALS = {"toplayer": 2048, "latlayer1": 1024, "latlayer2": 512, "latlayer3": 256}


def _conv(state: dict, gen: torch.Generator, name: str, cin: int, cout: int, k: int,
          trained: bool) -> None:
    state[f"{name}.weight"] = torch.randn(cout, cin, k, k, generator=gen) * 0.01
    bias = torch.randn(cout, generator=gen) * 0.01
    state[f"{name}.bias"] = bias if trained else torch.zeros(cout)


def _resnet(gen: torch.Generator) -> dict[str, torch.Tensor]:
    seed = int(torch.randint(0, 2**31 - 1, (1,), generator=gen))
    torch.manual_seed(seed)
    return {k: v.clone() for k, v in torchvision.models.resnet50().state_dict().items()
            if not k.startswith("fc.")}


def official_state_dict(seed: int = 0, stage: int = 2, num_classes: int = K
                        ) -> dict[str, torch.Tensor]:
    """Every key of the official ``fpn`` network (ResNet-50) as stage ``stage`` (1, 2, 3) leaves it.

    Files of the same ``seed`` share what the later stages keep frozen: stage 2's G is stage 1's,
    stage 3's L and G's plain layers are stage 2's.
    """
    gen = torch.Generator().manual_seed(seed)
    state: dict[str, torch.Tensor] = {}
    state.update({f"resnet_global.{k}": v for k, v in _resnet(gen).items()})
    state.update({f"resnet_local.{k}": v for k, v in _resnet(gen).items()})
    # global FPN: plain layers (stage 1), doubled "_ext" twins (stage 3), smooth and classify
    for name, channels in LATERALS.items():
        _conv(state, gen, f"fpn_global.{name}", channels, 256, 1, trained=True)
        _conv(state, gen, f"fpn_global.{name}_ext", channels * 2, 256, 1, trained=False)
    for i in range(1, 5):
        for j, cout in ((1, 256), (2, 128)):
            _conv(state, gen, f"fpn_global.smooth{i}_{j}", 256, cout, 3, trained=True)
            _conv(state, gen, f"fpn_global.smooth{i}_{j}_ext", 512, cout, 3, trained=False)
    _conv(state, gen, "fpn_global.smooth", 1024, 512, 3, trained=True)
    _conv(state, gen, "fpn_global.classify", 512, num_classes, 3, trained=True)
    # local FPN: only doubled layers, under the plain names (trained in stage 2)
    local = stage >= 2
    for name, channels in LATERALS.items():
        _conv(state, gen, f"fpn_local.{name}", channels * 2, 256, 1, trained=local)
    for i in range(1, 5):
        _conv(state, gen, f"fpn_local.smooth{i}_1", 512, 256, 3, trained=local)
        _conv(state, gen, f"fpn_local.smooth{i}_2", 512, 128, 3, trained=local)
    _conv(state, gen, "fpn_local.smooth", 1024, 512, 3, trained=local)
    _conv(state, gen, "fpn_local.classify", 512, num_classes, 3, trained=local)
    _conv(state, gen, "ensemble_conv", 1024, num_classes, 3, trained=local)
    if stage >= 3:  # G retrained with L's maps: encoder, _ext layers, smooth, classify, ensemble
        state.update({f"resnet_global.{k}": v for k, v in _resnet(gen).items()})
        for key in list(state):
            layer = key.rsplit(".", 1)[0]
            if (layer.endswith("_ext") or layer in ("fpn_global.smooth", "fpn_global.classify",
                                                    "ensemble_conv")):
                state[key] = state[key] + torch.randn(state[key].shape, generator=gen) * 0.01
    return state
