from __future__ import annotations

import urllib.error

import pytest
import torch
import torchvision

from glnet_geo.errors import InputError, WeightsNotFoundError
from glnet_geo.models.encoders import (
    ResNetEncoder,
    adapt_first_conv,
    cached_weights_path,
    imagenet_weights,
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


@pytest.fixture()
def offline(tmp_path, monkeypatch):
    """An empty torch.hub cache and no network: every download fails as it does offline."""
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    downloads = []

    def refuse(url, *args, **kwargs):
        downloads.append(url)
        raise urllib.error.URLError("offline")

    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)
    return downloads


def test_imagenet_weights_come_from_the_torchvision_cache(tmp_path, resnet18_file, offline):
    expected = tmp_path / "hub" / "checkpoints" / imagenet_weights("resnet18").url.rsplit("/")[-1]
    assert imagenet_weights_path("resnet18") == expected
    with pytest.raises(WeightsNotFoundError) as error:
        ResNetEncoder("resnet18", weights="imagenet")
    message = str(error.value)  # one line: the file, where it comes from, where to put it
    assert "\n" not in message and "could not be downloaded (offline)" in message
    url = imagenet_weights("resnet18").url
    assert f"put {expected.name} (from {url}) in {expected.parent}" in message
    assert offline == [url]  # torchvision's weights API was asked
    expected.parent.mkdir(parents=True, exist_ok=True)
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


def _torchgeo_file(weights, in_chans: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """Save a state_dict where torch.hub caches ``weights`` (as if downloaded)."""
    torch.manual_seed(seed)
    net = torchvision.models.resnet18()
    net.conv1 = torch.nn.Conv2d(in_chans, 64, 7, 2, 3, bias=False)
    state = net.state_dict()
    path = cached_weights_path(weights)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)
    return state


def test_torchgeo_weights_load_from_the_cache_with_their_bands(offline):
    from torchgeo.models import ResNet18_Weights

    weights = ResNet18_Weights.SENTINEL2_ALL_MOCO
    bands = weights.meta["in_chans"]
    state = _torchgeo_file(weights, bands)
    encoder = ResNetEncoder("resnet18", in_channels=bands,
                            weights="torchgeo:ResNet18_Weights.SENTINEL2_ALL_MOCO")
    torch.testing.assert_close(encoder.conv1.weight, state["conv1.weight"])
    torch.testing.assert_close(encoder.layer4[1].bn2.running_mean,
                               state["layer4.1.bn2.running_mean"])
    assert offline == []  # found in the cache, nothing downloaded


def test_torchgeo_weights_check_bands_backbone_and_name(offline):
    from torchgeo.models import ResNet18_Weights

    weights = ResNet18_Weights.SENTINEL2_ALL_MOCO
    with pytest.raises(InputError, match=f"takes {weights.meta['in_chans']} bands but the model "
                       "takes 3; pick torchgeo weights for 3 bands"):
        ResNetEncoder("resnet18", weights="torchgeo:ResNet18_Weights.SENTINEL2_ALL_MOCO")
    with pytest.raises(InputError, match="are resnet50 weights but the backbone is resnet18; "
                       "pass --backbone resnet50"):
        ResNetEncoder("resnet18", weights="torchgeo:ResNet50_Weights.SENTINEL2_RGB_MOCO")
    with pytest.raises(InputError, match="has no 'NOPE'"):
        ResNetEncoder("resnet18", weights="torchgeo:ResNet18_Weights.NOPE")
    with pytest.raises(InputError, match="not a torchgeo ResNet weights name"):
        ResNetEncoder("resnet18", weights="torchgeo:resnet18")
    with pytest.raises(WeightsNotFoundError, match="put resnet50_sentinel2_rgb_moco"):
        ResNetEncoder("resnet50", weights="torchgeo:ResNet50_Weights.SENTINEL2_RGB_MOCO")
