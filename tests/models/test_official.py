"""Import of the official GLNet state_dicts, built in the layout each official stage leaves."""

from __future__ import annotations

import pytest
import torch
from official_factory import K, official_state_dict

from glnet_geo.classes import DEEPGLOBE
from glnet_geo.errors import CheckpointError
from glnet_geo.models import from_official
from glnet_geo.models.official import check_official_stages, official_names, official_stage
from glnet_geo.models.stages import Stage


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


def test_stage_one_file_fills_the_frozen_global_copy():
    official = official_state_dict(seed=1, stage=3)
    stage1 = official_state_dict(seed=2, stage=1)
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
    with pytest.raises(CheckpointError, match=r"lacks key 'fpn_local.smooth2_1.bias'"):
        from_official(state, K)
    state = {**official, "fpn_global.extra.weight": torch.zeros(1)}
    with pytest.raises(CheckpointError, match=r"unexpected key 'fpn_global.extra.weight'"):
        from_official(state, K)
    stage1 = {k: v for k, v in official.items() if not k.startswith("fpn_global.toplayer.")}
    with pytest.raises(CheckpointError, match=r"stage-1.*lacks key 'fpn_global.toplayer.bias'"):
        from_official(official, K, global_fixed=stage1)


def test_wrong_class_count_is_explained(official):
    with pytest.raises(CheckpointError, match="the file predicts 7 classes, the preset has 2"):
        from_official(official, 2)


@pytest.mark.parametrize("number, stage", [(1, Stage.GLOBAL), (2, Stage.GLOBAL_TO_LOCAL),
                                           (3, Stage.LOCAL_TO_GLOBAL)])
def test_stage_is_read_from_the_weights(number, stage):
    state = official_state_dict(seed=number, stage=number)
    assert official_stage(state) is stage
    assert official_stage({f"module.{k}": v for k, v in state.items()}) is stage


def test_stage_three_without_its_stage_one_file_is_refused():
    stage3 = official_state_dict(seed=0, stage=3)
    with pytest.raises(CheckpointError, match=r"l2g.pth is a stage-3 \(local2global\) file.*"
                       "--global-fixed fpn_deepglobe_global.pth"):
        check_official_stages("l2g.pth", stage3)
    stage1 = official_state_dict(seed=0, stage=1)
    assert check_official_stages("l2g.pth", stage3, "g.pth", stage1) is Stage.LOCAL_TO_GLOBAL


@pytest.mark.parametrize("number", [1, 2])
def test_global_fixed_with_a_file_not_of_stage_three_is_refused(number):
    state = official_state_dict(seed=0, stage=number)
    stage1 = official_state_dict(seed=0, stage=1)
    with pytest.raises(CheckpointError, match=f"but x.pth is a stage-{number} .*drop "
                       "--global-fixed"):
        check_official_stages("x.pth", state, "g.pth", stage1)


def test_a_stage_three_file_as_global_fixed_is_refused():
    stage3 = official_state_dict(seed=0, stage=3)
    with pytest.raises(CheckpointError, match=r"--global-fixed l2g.pth is a stage-3"):
        check_official_stages("x.pth", stage3, "l2g.pth", stage3)


def test_from_official_refuses_stages_that_do_not_go_together(official):
    with pytest.raises(CheckpointError, match=r"is a stage-3 .*--global-fixed"):
        from_official(official_state_dict(seed=0, stage=3), K)
    with pytest.raises(CheckpointError, match="but the official state_dict is a stage-2"):
        from_official(official, K, global_fixed=official_state_dict(seed=0, stage=1))
