from __future__ import annotations

import pytest
import torch
from scene_factory import GLOBAL, PATCH, make_scene

from glnet_geo.errors import InputError
from glnet_geo.models import GLNet, GLNetMode
from glnet_geo.models.glnet import Aggregation

PATCH_MODES = [m for m in GLNetMode if m is not GLNetMode.GLOBAL]
K = 3


@pytest.fixture(scope="module", params=[("resnet18", 3), ("resnet18", 4), ("resnet50", 3),
                                        ("resnet50", 4)], ids=lambda p: f"{p[0]}-{p[1]}band")
def model_and_scene(request):
    backbone, bands = request.param
    torch.manual_seed(0)
    model = GLNet(num_classes=K, backbone=backbone, in_channels=bands, fixed_global=True).eval()
    return model, make_scene(bands, seed=bands)


@pytest.mark.parametrize("mode", list(GLNetMode), ids=lambda m: m.value)
def test_forward_shapes_in_every_mode(model_and_scene, mode):
    model, scene = model_and_scene
    n = scene.patches.shape[0]
    with torch.no_grad():
        out = model(scene.global_image, scene.patches, scene.boxes, mode=mode)
    local_shape = (n, K, PATCH // 4, PATCH // 4)
    global_shape = (1, K, GLOBAL // 4, GLOBAL // 4)
    if mode is GLNetMode.GLOBAL:
        assert out.logits.shape == global_shape
        assert out.local_logits is None
    else:
        assert out.logits.shape == local_shape
        assert out.local_logits.shape == local_shape
    if mode in (GLNetMode.GLOBAL, GLNetMode.AGGREGATE, GLNetMode.GLOBAL_TO_LOCAL,
                GLNetMode.BIDIRECTIONAL):
        assert out.global_logits.shape == global_shape
    else:
        assert out.global_logits is None
    if mode in (GLNetMode.AGGREGATE, GLNetMode.GLOBAL_TO_LOCAL):
        assert out.fmreg.ndim == 0 and out.fmreg > 0
    else:
        assert out.fmreg is None
    assert torch.isfinite(out.logits).all()


@pytest.mark.parametrize("mode", PATCH_MODES, ids=lambda m: m.value)
def test_iter_scene_equals_forward(model_and_scene, mode):
    model, scene = model_and_scene
    with torch.inference_mode():
        whole = model(scene.global_image, scene.patches, scene.boxes, mode=mode)
        batches = (b for b in scene.patches.split(2))  # lazy, uneven last batch
        parts = list(model.iter_scene(scene.global_image, scene.boxes, batches, mode=mode,
                                      scene_shape=scene.shape))
    n = scene.patches.shape[0]
    assert [p.index for p in parts] == [slice(i, min(i + 2, n)) for i in range(0, n, 2)]
    torch.testing.assert_close(torch.cat([p.logits for p in parts]), whole.logits,
                               rtol=1e-5, atol=1e-5)


def test_modes_differ_and_sharing_matters(resnet18_model, scene3):
    s = scene3
    with torch.no_grad():
        outs = {m: resnet18_model(s.global_image, s.patches, s.boxes, mode=m).logits
                for m in PATCH_MODES}
    for a in PATCH_MODES:
        for b in PATCH_MODES:
            if a is not b:
                assert not torch.allclose(outs[a], outs[b]), (a, b)


def test_aggregation_terms_sum_to_the_conv():
    agg = Aggregation(K)
    torch.nn.init.normal_(agg.conv.bias)
    local, global_ = torch.randn(2, 512, 5, 6), torch.randn(2, 512, 5, 6)
    torch.testing.assert_close(agg.local_term(local) + agg.global_term(global_),
                               agg(local, global_), rtol=1e-5, atol=1e-5)


def test_bidirectional_uses_the_frozen_copy(scene3):
    torch.manual_seed(0)
    model = GLNet(K, "resnet18", fixed_global=True).eval()
    s = scene3
    with torch.no_grad():
        before = model(s.global_image, s.patches, s.boxes, mode="bidirectional")
        # Changing G's plain top layer leaves G<->L unchanged: G runs with its doubled layers
        # and L is fed by the frozen copy.
        model.global_branch.fpn.toplayer.weight.add_(1.0)
        after = model(s.global_image, s.patches, s.boxes, mode="bidirectional")
        torch.testing.assert_close(after.logits, before.logits)
        model.freeze_global_copy()  # the copy now has the changed top layer
        copied = model(s.global_image, s.patches, s.boxes, mode="bidirectional")
    assert not torch.allclose(copied.logits, before.logits)


def test_bidirectional_needs_the_frozen_copy(scene3):
    model = GLNet(K, "resnet18").eval()
    assert model.fixed_global_branch is None
    with pytest.raises(InputError, match="fixed_global=True"):
        model(scene3.global_image, scene3.patches, scene3.boxes, mode="bidirectional")
    model.freeze_global_copy()
    assert not any(p.requires_grad for p in model.fixed_global_branch.parameters())
    model.train()
    assert not model.fixed_global_branch.training


def test_regulariser_gradient_reaches_only_the_local_branch(scene3):
    torch.manual_seed(0)
    model = GLNet(K, "resnet18").eval()  # eval: batch norm on 1x1 maps of a 32 px view
    s = scene3
    for mode in (GLNetMode.AGGREGATE, GLNetMode.GLOBAL_TO_LOCAL):
        model.zero_grad(set_to_none=True)
        out = model(s.global_image, s.patches, s.boxes, mode=mode)
        out.fmreg.backward()
        local_grads = [p.grad for p in model.local_branch.parameters() if p.grad is not None]
        assert local_grads and any(g.abs().sum() > 0 for g in local_grads)
        for part in (model.global_branch, model.aggregation):
            assert all(p.grad is None or not p.grad.any() for p in part.parameters()), mode


def test_local_mode_needs_no_global_image(resnet18_model, scene3):
    with torch.no_grad():
        out = resnet18_model(None, scene3.patches, scene3.boxes, mode=GLNetMode.LOCAL)
    assert out.logits.shape[0] == scene3.patches.shape[0]


def test_scene_shape_default_is_inferred_from_boxes(resnet18_model, scene3):
    s = scene3
    with torch.no_grad():
        given = resnet18_model(s.global_image, s.patches, s.boxes, "bidirectional", s.shape)
        inferred = resnet18_model(s.global_image, s.patches, s.boxes, "bidirectional")
    torch.testing.assert_close(given.logits, inferred.logits)


@pytest.mark.parametrize("change, match", [
    (dict(global_image=torch.rand(3, 32, 32)), r"global_image has shape \(3, 32, 32\)"),
    (dict(global_image=torch.rand(2, 3, 32, 32)), r"expected \(1, 3, H, W\)"),
    (dict(global_image=torch.rand(1, 4, 32, 32)), "has 4 channels; this GLNet takes 3"),
    (dict(patches=torch.rand(6, 2, 32, 32)), "patches has 2 channels"),
    (dict(patches=torch.zeros(6, 3, 32, 32, dtype=torch.uint8)), "dtype torch.uint8"),
    (dict(boxes=torch.rand(6, 3)), r"boxes have shape \(6, 3\)"),
    (dict(boxes=torch.tensor([[0.5, 0.0, 0.6, 0.4]] * 6)), r"boxes\[0\].*top \+ height <= 1"),
    (dict(boxes=torch.tensor([[-0.1, 0.0, 0.5, 0.4]] * 6)), r"boxes\[0\] = \(top -0.1"),
    (dict(boxes=torch.tensor([[0.1, 0.0, 0.5, 0.4]] * 5)), "gave more than 5 patches"),
    (dict(boxes=torch.tensor([[0.1, 0.0, 0.5, 0.4]] * 7)), "gave 6 patches for 7 boxes"),
    (dict(mode="sideways"), "unknown GLNet mode 'sideways'"),
    (dict(scene_shape=(0, 10)), "scene_shape"),
])
def test_bad_inputs_raise_one_line_errors(resnet18_model, scene3, change, match):
    args = dict(global_image=scene3.global_image, patches=scene3.patches, boxes=scene3.boxes,
                mode="global-to-local", scene_shape=None)
    args.update(change)
    with pytest.raises(InputError, match=match) as info:
        with torch.no_grad():
            resnet18_model(**args)
    assert "\n" not in str(info.value)


def test_iter_scene_rejects_global_mode(resnet18_model, scene3):
    with pytest.raises(InputError, match="GLOBAL mode has none"):
        resnet18_model.iter_scene(scene3.global_image, scene3.boxes, [scene3.patches],
                                  mode="global")


def test_bad_constructor_arguments():
    with pytest.raises(InputError, match="num_classes=0"):
        GLNet(0, "resnet18")
    with pytest.raises(InputError, match="resnet18, resnet34, resnet50"):
        GLNet(2, "vgg16")


def test_global_mode_runs_the_frozen_stage_one_copy():
    """After stage 3 changes G, GLOBAL mode still gives the stage-1 G's logits."""
    torch.manual_seed(0)
    model = GLNet(3, "resnet18").eval()
    image = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        stage1 = model(image, None, None, mode=GLNetMode.GLOBAL).logits
        model.freeze_global_copy()
        for p in model.global_branch.parameters():
            p.add_(0.05)
        after = model(image, None, None, mode=GLNetMode.GLOBAL).logits
        trained = model.global_branch(image).logits
    assert torch.equal(after, stage1)
    assert not torch.equal(trained, stage1)
