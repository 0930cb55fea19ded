"""torchgeo's own datasets and samplers feed GLNet, trained in a plain Lightning Trainer."""

import json

import lightning as L
import numpy as np
import pytest
import torch
from torchgeo.datasets import DeepGlobeLandCover, RasterDataset
from torchgeo.samplers import RandomGeoSampler

from glnet_geo.checkpoint import ModelConfig, Normalization
from glnet_geo.classes import DEEPGLOBE, NO_CLASS
from glnet_geo.datasets import synthetic
from glnet_geo.datasets.sample import SceneSample, SceneViews
from glnet_geo.datasets.torchgeo_scenes import TorchGeoScenes, scene_loader
from glnet_geo.errors import InputError
from glnet_geo.models.stages import Stage
from glnet_geo.training.data import IMAGENET
from glnet_geo.training.module import GLNetModule

VIEWS = SceneViews(global_size=64, patch_size=32, min_overlap=0, normalization=IMAGENET)


class Images(RasterDataset):
    filename_glob = "scene_*.tif"


class Masks(RasterDataset):
    filename_glob = "scene_*.tif"
    is_image = False


def test_deepglobe_land_cover_samples_become_scenes(tmp_path):
    synthetic.write_deepglobe_layout(tmp_path, count=2, size=64, seed=1)
    dataset = DeepGlobeLandCover(tmp_path, split="train")
    scenes = TorchGeoScenes(dataset, VIEWS)
    assert len(scenes) == 2
    scene = scenes[0]
    assert isinstance(scene, SceneSample)
    assert scene.scene_shape == (64, 64) and scene.num_patches == 4
    assert scene.global_image.shape == (3, 64, 64) and scene.global_label.shape == (16, 16)
    expected = dataset[0]["mask"].numpy()
    assert np.array_equal(scene.label.numpy(), expected)
    assert set(np.unique(expected)) <= set(range(len(DEEPGLOBE.names)))


def test_a_geo_dataset_and_sampler_train_two_steps_in_a_plain_trainer(tmp_path):
    files = synthetic.write_custom_dataset(tmp_path, count=2, size=64, seed=2)
    classes = json.loads(files.classes.read_text())["classes"]
    dataset = Images(paths=files.images[0].parent) & Masks(paths=files.labels[0].parent)
    sampler = RandomGeoSampler(dataset, size=48, length=4)
    normalization = Normalization(255.0, [0.5] * 3, [0.25] * 3)
    views = SceneViews(64, 32, 8, normalization, augment=True)
    loader = scene_loader(TorchGeoScenes(dataset, views), batch_size=2, sampler=sampler)
    batch = next(iter(loader))
    assert len(batch) == 2 and batch[0].scene_shape == (48, 48)
    config = ModelConfig(class_names=[c["name"] for c in classes],
                         class_colors=[c["color"] for c in classes], backbone="resnet18",
                         normalization=normalization, global_size=64, patch_size=32,
                         min_overlap=8, scene_size=48)
    torch.manual_seed(0)
    module = GLNetModule(config, Stage.GLOBAL)
    before = [p.detach().clone() for p in module.model.global_branch.parameters()]
    trainer = L.Trainer(max_steps=2, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(module, loader)
    assert trainer.global_step == 2
    after = list(module.model.global_branch.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(after, before, strict=True))


def test_ignore_value_and_bad_samples():
    image = torch.full((3, 40, 40), 128.0)
    mask = torch.zeros((1, 40, 40), dtype=torch.long)
    mask[0, :10] = 9
    scenes = TorchGeoScenes([{"image": image, "mask": mask}], VIEWS, ignore_value=9)
    assert (scenes[0].label[:10] == NO_CLASS).all() and (scenes[0].label[10:40] == 0).all()
    with pytest.raises(InputError, match="has no mask"):
        TorchGeoScenes([{"image": image, "labels": mask}], VIEWS)[0]
    with pytest.raises(InputError, match="differ in size"):
        TorchGeoScenes([{"image": image, "mask": mask[:, :20]}], VIEWS)[0]
