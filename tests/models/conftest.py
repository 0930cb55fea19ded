"""Fixtures shared by the model tests."""

from __future__ import annotations

import pytest
import torch
from scene_factory import Scene, make_scene

from glnet_geo.models import GLNet


@pytest.fixture(scope="session")
def scene3() -> Scene:
    return make_scene(3)


@pytest.fixture(scope="session")
def resnet18_model() -> GLNet:
    torch.manual_seed(0)
    return GLNet(num_classes=3, backbone="resnet18", in_channels=3, fixed_global=True).eval()
