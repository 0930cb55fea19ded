"""Import of the official GLNet state_dicts, built here from the architecture's key list."""

from __future__ import annotations

import pytest
import torch
import torchvision

from glnet_geo.classes import DEEPGLOBE
from glnet_geo.errors import CheckpointError
from glnet_geo.models import from_official
from glnet_geo.models.official import official_names, official_stage
from glnet_geo.models.stages import Stage

K = 7
LATERALS = {"toplayer": 2048, "latlayer1": 1024, "latlayer2": 512, "latlayer3": 256}


def official_state_dict(seed: int = 0) -> dict[str, torch.Tensor]:
    """Random weights under every key of the official ``fpn`` network (ResNet-50, 7 classes)."""
    gen = torch.Generator().manual_seed(seed)
    state = {}

    def conv(name, cin, cout, k):
        state[f"{name}.weight"] = torch.randn(cout, cin, k, k, generator=gen) * 0.01
        state[f"{name}.bias"] = torch.randn(cout, generator=gen) * 0.01

    resnet = {k: v for k, v in torchvision.models.resnet50().state_dict().items()
              if not k.startswith("fc.")}
    for side in ("global", "local"):
        state.update({f"resnet_{side}.{k}": v.clone() for k, v in resnet.items()})
    # global FPN: plain layers, their doubled "_ext" twins, "smooth" and "classify"
    for fold, suffix in ((1, ""), (2, "_ext")):
        for name, channels in LATERALS.items():
            conv(f"fpn_global.{name}{suffix}", channels * fold, 256, 1)
        for i in range(1, 5):
            conv(f"fpn_global.smooth{i}_1{suffix}", 256 * fold, 256, 3)
            conv(f"fpn_global.smooth{i}_2{suffix}", 256 * fold, 128, 3)
    conv("fpn_global.smooth", 1024, 512, 3)
    conv("fpn_global.classify", 512, K, 3)
    # local FPN: only doubled layers, under the plain names
    for name, channels in LATERALS.items():
        conv(f"fpn_local.{name}", channels * 2, 256, 1)
    for i in range(1, 5):
        conv(f"fpn_local.smooth{i}_1", 512, 256, 3)
        conv(f"fpn_local.smooth{i}_2", 512, 128, 3)
    conv("fpn_local.smooth", 1024, 512, 3)
    conv("fpn_local.classify", 512, K, 3)
    conv("ensemble_conv", 1024, K, 3)
    return state


@pytest.fixture(scope="module")
def official():
    return official_state_dict()


def test_every_official_key_is_imported(official):
    model = from_official(official, K)
    names = official_names(model)
    assert set(names) == set(official)  # no key left over, none missing
    ours = model.state_dict()
    for key, value in official.items():
        assert torch.equal(ours[names[key]], value), key
    assert torch.equal(model.local_branch.fpn.toplayer_ext.weight,
                       official["fpn_local.toplayer.weight"])
    assert torch.equal(model.local_branch.fpn.smooth.weight, official["fpn_local.smooth.weight"])
    assert torch.equal(model.global_branch.fpn.smooth3_2_ext.bias,
                       official["fpn_global.smooth3_2_ext.bias"])
    assert torch.equal(model.aggregation.conv.weight, official["ensemble_conv.weight"])
    assert torch.equal(model.global_branch.encoder.layer4[2].conv3.weight,
                       official["resnet_global.layer4.2.conv3.weight"])
    assert not model.training


def test_dataparallel_prefix_and_missing_batch_counters_are_accepted(official):
    state = {f"module.{k}": v for k, v in official.items()
             if not k.endswith("num_batches_tracked")}  # PyTorch 0.4.0 files lack them
    model = from_official(state, K)
    assert torch.equal(model.local_branch.encoder.conv1.weight,
                       official["resnet_local.conv1.weight"])


def test_class_order_permutes_the_classifiers(official):
    model = from_official(official, K, class_order=DEEPGLOBE.official_order)
    order = list(DEEPGLOBE.official_order)
    assert torch.equal(model.global_branch.fpn.classify.weight,
                       official["fpn_global.classify.weight"][order])
    assert torch.equal(model.local_branch.fpn.classify.bias,
                       official["fpn_local.classify.bias"][order])
    assert torch.equal(model.aggregation.conv.weight, official["ensemble_conv.weight"][order])


def test_stage_one_file_fills_the_frozen_global_copy(official):
    stage1 = official_state_dict(seed=1)
    model = from_official(official, K, global_fixed=stage1)
    fixed = model.fixed_global_branch
    assert torch.equal(fixed.encoder.layer2[0].conv1.weight,
                       stage1["resnet_global.layer2.0.conv1.weight"])
    assert torch.equal(fixed.fpn.toplayer.weight, stage1["fpn_global.toplayer.weight"])
    assert torch.equal(model.global_branch.fpn.toplayer.weight,
                       official["fpn_global.toplayer.weight"])
    assert not any(p.requires_grad for p in fixed.parameters())


def test_missing_and_unexpected_keys_are_named(official):
    state = dict(official)
    del state["fpn_local.smooth2_1.bias"]
    with pytest.raises(CheckpointError, match="lacks key 'fpn_local.smooth2_1.bias'"):
        from_official(state, K)
    state = {**official, "fpn_global.extra.weight": torch.zeros(1)}
    with pytest.raises(CheckpointError, match="unexpected key 'fpn_global.extra.weight'"):
        from_official(state, K)
    stage1 = {k: v for k, v in official.items() if not k.startswith("fpn_global.toplayer.")}
    with pytest.raises(CheckpointError, match="stage-1.*lacks key 'fpn_global.toplayer.bias'"):
        from_official(official, K, global_fixed=stage1)


def test_wrong_class_count_is_explained(official):
    with pytest.raises(CheckpointError, match="the file predicts 7 classes, the preset has 2"):
        from_official(official, 2)


def test_stage_is_decided_from_the_inputs(official):
    assert official_stage(official) is Stage.GLOBAL_TO_LOCAL
    assert official_stage(official, global_fixed=official) is Stage.LOCAL_TO_GLOBAL
    untrained_local = {k: torch.zeros_like(v) if k.startswith("fpn_local.") and
                       k.endswith(".bias") else v for k, v in official.items()}
    assert official_stage(untrained_local) is Stage.GLOBAL
