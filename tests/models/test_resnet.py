import pytest
import torch
import torchvision
from fresh_process import modules_loaded

from glnet_geo.models.resnet import RESNETS, ResNetTrunk


def _torchvision_features(net: torchvision.models.ResNet, x: torch.Tensor) -> list[torch.Tensor]:
    x = net.maxpool(net.relu(net.bn1(net.conv1(x))))
    features = []
    for layer in (net.layer1, net.layer2, net.layer3, net.layer4):
        x = layer(x)
        features.append(x)
    return features


@pytest.mark.parametrize("backbone", list(RESNETS))
def test_the_trunk_is_torchvisions_resnet_without_its_head(backbone):
    reference = getattr(torchvision.models, backbone)().eval()
    state = {k: v for k, v in reference.state_dict().items() if not k.startswith("fc.")}
    trunk = ResNetTrunk(RESNETS[backbone]).eval()
    assert {k: v.shape for k, v in trunk.state_dict().items()} == \
        {k: v.shape for k, v in state.items()}
    trunk.load_state_dict(state, strict=True)
    # Running statistics away from (0, 1), so that the batch norms matter.
    with torch.no_grad():
        for a, b in zip(trunk.modules(), reference.modules(), strict=False):
            if isinstance(a, torch.nn.BatchNorm2d):
                a.running_mean.uniform_(-0.1, 0.1)
                a.running_var.uniform_(0.5, 1.5)
                b.running_mean.copy_(a.running_mean)
                b.running_var.copy_(a.running_var)
    x = torch.rand(2, 3, 64, 96)
    with torch.no_grad():
        ours, theirs = trunk(x), _torchvision_features(reference, x)
    assert trunk.out_channels == tuple(f.shape[1] for f in theirs)
    for a, b in zip(ours, theirs, strict=True):
        torch.testing.assert_close(a, b)


def test_the_trunk_is_initialised_as_torchvision_initialises_it():
    torch.manual_seed(0)
    trunk = ResNetTrunk(RESNETS["resnet50"])
    conv = trunk.layer3[0].conv2  # 256 -> 256, 3x3: Kaiming (fan out) std = sqrt(2 / 2304)
    assert conv.weight.std().item() == pytest.approx((2 / (256 * 9)) ** 0.5, rel=0.02)
    assert torch.equal(trunk.layer3[0].bn2.weight, torch.ones(256))
    assert torch.equal(trunk.layer3[0].bn2.bias, torch.zeros(256))


def test_prediction_imports_neither_torchvision_nor_dynamo(tmp_path, make_checkpoint,
                                                           make_raster):
    checkpoint, raster = make_checkpoint(), make_raster("in.tif", height=96, width=96)
    code = ("from glnet_geo.predict import predict_raster; "
            f"predict_raster({str(checkpoint)!r}, {str(raster)!r}, {str(tmp_path / 'out.tif')!r})")
    assert modules_loaded(code, ["torchvision", "torch._dynamo"]) == []
