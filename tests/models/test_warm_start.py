from __future__ import annotations

import pytest
import torch
from scene_factory import make_scene

from glnet_geo.models import GLNet, GLNetMode
from glnet_geo.models.warm_start import start_local_from

K = 3


def _trained_looking(seed: int) -> GLNet:
    """A GLNet with random, non-trivial weights everywhere (biases included)."""
    torch.manual_seed(seed)
    model = GLNet(num_classes=K, backbone="resnet18")
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.normal_(0.0, 0.05)
    return model.eval()


@pytest.fixture(scope="module")
def started():
    model, local_only = _trained_looking(0), _trained_looking(1)
    global_before = {k: v.clone() for k, v in model.global_branch.state_dict().items()}
    start_local_from(model, local_only)
    return model, local_only, global_before


def test_global_to_local_starts_as_the_local_only_model(started):
    model, local_only, _ = started
    scene = make_scene(seed=2)
    with torch.no_grad():
        shared = model(scene.global_image, scene.patches, scene.boxes,
                       mode=GLNetMode.GLOBAL_TO_LOCAL)
        alone = local_only(scene.global_image, scene.patches, scene.boxes, mode=GLNetMode.LOCAL)
    assert alone.logits.abs().max() > 0.1  # not a trivial zero output
    torch.testing.assert_close(shared.local_logits, alone.logits, rtol=0, atol=1e-5)
    torch.testing.assert_close(shared.logits, alone.logits, rtol=0, atol=1e-5)


def test_the_global_branch_is_kept(started):
    model, _, global_before = started
    for name, value in model.global_branch.state_dict().items():
        assert torch.equal(value, global_before[name]), name


def test_the_layers_reading_global_maps_still_learn_from_them():
    model = _trained_looking(0)
    start_local_from(model, _trained_looking(1))
    scene = make_scene(seed=3)
    out = model(scene.global_image, scene.patches, scene.boxes, mode=GLNetMode.GLOBAL_TO_LOCAL)
    out.logits.square().mean().backward()
    fpn = model.local_branch.fpn
    assert fpn.toplayer_ext.weight.grad[:, fpn.toplayer.in_channels:].abs().max() > 0
    assert fpn.smooth.weight.grad.abs().max() > 0
    assert model.aggregation.conv.weight.grad[:, model.aggregation.channels:].abs().max() > 0


def test_the_local_only_model_is_not_changed(started):
    _, local_only, _ = started
    reference = _trained_looking(1)
    for (name, value), expected in zip(local_only.state_dict().items(),
                                       reference.state_dict().values(), strict=True):
        assert torch.equal(value, expected), name
