from __future__ import annotations

import pytest
import torch

from glnet_geo.models.fpn import FPN, FeatureMaps

RESNET18 = (64, 128, 256, 512)
RESNET50 = (256, 512, 1024, 2048)
PLAIN = ["toplayer", "latlayer1", "latlayer2", "latlayer3",
         *(f"smooth{i}_1" for i in range(1, 5)), *(f"smooth{i}_2" for i in range(1, 5))]


def _features(channels, batch=2, size=64):
    return [torch.randn(batch, c, size // s, size // s)
            for c, s in zip(channels, (4, 8, 16, 32), strict=True)]


def test_plain_decoder_shapes():
    fpn = FPN(RESNET18, num_classes=5, shared=False)
    out = fpn(_features(RESNET18))
    assert out.logits.shape == (2, 5, 16, 16)
    assert out.ps3.shape == (2, 512, 16, 16)
    assert [p.shape[-1] for p in out.ps0] == [2, 4, 8, 16]
    assert [p.shape[1] for p in out.ps1] == [256] * 4
    assert [p.shape[1] for p in out.ps2] == [128] * 4


def test_layers_follow_the_official_names_and_channels():
    fpn = FPN(RESNET50, num_classes=7)
    names = {n for n, _ in fpn.named_children()}
    assert names == {*PLAIN, *(f"{n}_ext" for n in PLAIN), "smooth", "classify"}
    assert fpn.toplayer.in_channels == 2048 and fpn.toplayer_ext.in_channels == 4096
    assert fpn.latlayer3.in_channels == 256 and fpn.latlayer3_ext.in_channels == 512
    assert (fpn.smooth.in_channels, fpn.smooth.out_channels) == (1024, 512)
    assert (fpn.smooth4_2.in_channels, fpn.smooth4_2.out_channels) == (256, 128)
    small = FPN(RESNET18, num_classes=7, shared=False)
    assert {n for n, _ in small.named_children()} == {*PLAIN, "classify"}
    assert small.toplayer.in_channels == 512 and small.latlayer3.in_channels == 64


def test_shared_maps_go_through_the_doubled_layers():
    torch.manual_seed(0)
    fpn = FPN(RESNET18, num_classes=3)
    for module in fpn.children():
        torch.nn.init.normal_(module.bias)
    features = _features(RESNET18)
    out = fpn(features)
    shared = FeatureMaps(c=[torch.randn_like(f) for f in features],
                         ps0=[torch.randn_like(p) for p in out.ps0],
                         ps1=[torch.randn_like(p) for p in out.ps1],
                         ps2=[torch.randn_like(p) for p in out.ps2])
    with_shared = fpn(features, shared)
    assert with_shared.logits.shape == out.logits.shape
    assert not torch.allclose(with_shared.logits, out.logits)
    # The plain layers play no part in the shared path.
    fpn.toplayer.weight.data.add_(1.0)
    torch.testing.assert_close(fpn(features, shared).logits, with_shared.logits)


def test_a_plain_decoder_refuses_shared_maps():
    fpn = FPN(RESNET18, num_classes=3, shared=False)
    features = _features(RESNET18)
    out = fpn(features)
    shared = FeatureMaps(c=features, ps0=out.ps0, ps1=out.ps1, ps2=out.ps2)
    with pytest.raises(RuntimeError, match="shared=False"):
        fpn(features, shared)
