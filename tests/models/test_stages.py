from __future__ import annotations

import pytest
import torch
from scene_factory import make_scene

from glnet_geo.errors import InputError
from glnet_geo.models import GLNet
from glnet_geo.models.losses import focal_loss
from glnet_geo.models.stages import Stage, prepare_stage, stage_parameter_groups

K = 3
TRAINED = {Stage.GLOBAL: "global_branch", Stage.GLOBAL_TO_LOCAL: "local_branch",
           Stage.LOCAL_TO_GLOBAL: "global_branch"}


def _stage_loss(out, stage, gen):
    def target(logits):
        n, _, h, w = logits.shape
        return torch.randint(0, K, (n, h, w), generator=gen)

    if stage is Stage.GLOBAL:
        return focal_loss(out.logits, target(out.logits))
    loss = focal_loss(out.logits, target(out.logits))
    if stage is Stage.GLOBAL_TO_LOCAL:
        return loss + focal_loss(out.local_logits, target(out.local_logits)) + 0.15 * out.fmreg
    return loss + focal_loss(out.global_logits, target(out.global_logits))


@pytest.mark.parametrize("stage", list(Stage), ids=lambda s: s.value)
def test_a_step_changes_only_what_the_stage_trains(stage):
    torch.manual_seed(0)
    model = GLNet(K, "resnet18")
    scene = make_scene(global_size=64)  # 64 px: batch norm in train mode needs 2x2 c5 maps
    prepare_stage(model, stage)
    model.train()
    optimizer = torch.optim.Adam(stage_parameter_groups(model, stage))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    out = model(scene.global_image, scene.patches, scene.boxes, mode=stage.mode)
    _stage_loss(out, stage, torch.Generator().manual_seed(1)).backward()
    optimizer.step()
    changed = {k for k, v in model.state_dict().items() if not torch.equal(v, before[k])}
    allowed = (TRAINED[stage], "aggregation")
    assert changed and all(k.startswith(allowed) for k in changed), sorted(changed)[:5]
    assert any(k.startswith(f"{TRAINED[stage]}.encoder.") and k.endswith(".weight")
               for k in changed)
    if stage is not Stage.GLOBAL:
        assert any(k.startswith("aggregation.") for k in changed)
    if stage is Stage.LOCAL_TO_GLOBAL:
        assert any("_ext." in k for k in changed)  # G's layers that take L's maps
        assert model.fixed_global_branch is not None
        assert not model.fixed_global_branch.training and not model.local_branch.training


def test_parameter_groups_and_learning_rates():
    model = GLNet(K, "resnet18")
    groups = stage_parameter_groups(model, Stage.GLOBAL_TO_LOCAL)
    assert [(g["name"], g["lr"]) for g in groups] == [("local_branch", 2e-5),
                                                      ("aggregation", 2e-5)]
    groups = stage_parameter_groups(model, "global", lr_global=0.5)
    assert [(g["name"], g["lr"]) for g in groups] == [("global_branch", 0.5),
                                                      ("aggregation", 0.5)]
    assert len(groups[0]["params"]) == len(list(model.global_branch.parameters()))


def test_frozen_parts_stay_in_eval_mode():
    model = GLNet(K, "resnet18")
    prepare_stage(model, Stage.GLOBAL_TO_LOCAL)
    model.train()
    assert model.local_branch.training and not model.global_branch.training
    assert not any(p.requires_grad for p in model.global_branch.parameters())
    with pytest.raises(InputError, match="unknown GLNet parts"):
        model.set_trainable(["decoder"])
