from __future__ import annotations

import pytest
import torch
import torchvision

from glnet_geo.errors import InputError, WeightsNotFoundError
from glnet_geo.models.encoders import (
    BACKBONES,
    ResNetEncoder,
    adapt_first_conv,
    imagenet_weights_path,
)


@pytest.mark.parametrize("backbone, channels", [("resnet18", (64, 128, 256, 512)),
                                                ("resnet34", (64, 128, 256, 512)),
                                                ("resnet50", (256, 512, 1024, 2048))])
def test_out_channels_and_strides(backbone, channels):
    encoder = ResNetEncoder(backbone, in_channels=4)
    assert encoder.out_channels == channels
    features = encoder(torch.rand(1, 4, 64, 64))
    assert [f.shape[1] for f in features] == list(channels)
    assert [f.shape[-1] for f in features] == [16, 8, 4, 2]


def test_unknown_backbone_names_the_allowed_ones():
    with pytest.raises(InputError, match="'resnet101'; expected one of resnet18, resnet34"):
        ResNetEncoder("resnet101")


@pytest.mark.parametrize("bands", [1, 2, 4, 5])
def test_adapted_first_conv_keeps_the_response_to_a_grey_image(bands):
    weight = torch.randn(8, 3, 7, 7)
    adapted = adapt_first_conv(weight, bands)
    assert adapted.shape == (8, bands, 7, 7)
    grey = torch.rand(1, 1, 16, 16)
    rgb = torch.nn.functional.conv2d(grey.expand(1, 3, -1, -1), weight)
    multi = torch.nn.functional.conv2d(grey.expand(1, bands, -1, -1), adapted)
    torch.testing.assert_close(multi, rgb, rtol=1e-4, atol=1e-4)


def test_four_bands_keep_the_rgb_kernels_and_add_their_mean():
    weight = torch.randn(8, 3, 7, 7)
    adapted = adapt_first_conv(weight, 4)
    torch.testing.assert_close(adapted[:, :3], weight * 0.75)
    torch.testing.assert_close(adapted[:, 3], weight.mean(1) * 0.75)


@pytest.fixture()
def resnet18_file(tmp_path):
    torch.manual_seed(0)
    state = torchvision.models.resnet18().state_dict()
    path = tmp_path / "resnet18.pth"
    torch.save(state, path)
    return path, state


def test_weights_from_a_local_file(resnet18_file):
    path, state = resnet18_file
    encoder = ResNetEncoder("resnet18", weights=path)
    torch.testing.assert_close(encoder.layer3[1].conv2.weight, state["layer3.1.conv2.weight"])
    torch.testing.assert_close(encoder.bn1.running_var, state["bn1.running_var"])
    four = ResNetEncoder("resnet18", in_channels=4, weights=path)
    torch.testing.assert_close(four.conv1.weight, adapt_first_conv(state["conv1.weight"], 4))


def test_imagenet_weights_come_from_the_torchvision_cache(tmp_path, resnet18_file,
                                                          monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    expected = tmp_path / "hub" / "checkpoints" / BACKBONES["resnet18"][1].url.rsplit("/")[-1]
    assert imagenet_weights_path("resnet18") == expected
    with pytest.raises(WeightsNotFoundError, match=str(expected)):
        ResNetEncoder("resnet18", weights="imagenet")
    expected.parent.mkdir(parents=True)
    resnet18_file[0].rename(expected)
    encoder = ResNetEncoder("resnet18", weights="imagenet")
    torch.testing.assert_close(encoder.conv1.weight, resnet18_file[1]["conv1.weight"])


def test_weights_of_another_network_are_refused(tmp_path):
    path = tmp_path / "resnet34.pth"
    torch.save(torchvision.models.resnet34().state_dict(), path)
    with pytest.raises(InputError, match="not a torchvision resnet18 state_dict"):
        ResNetEncoder("resnet18", weights=path)
    path.write_bytes(b"not a torch file")
    with pytest.raises(InputError, match="is not a torch state_dict"):
        ResNetEncoder("resnet18", weights=path)
