import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader

from glnet_geo.checkpoint import ModelConfig, Normalization
from glnet_geo.datasets import synthetic
from glnet_geo.datasets.sample import SceneViews, collate_scenes
from glnet_geo.models.stages import Stage
from glnet_geo.training.module import GLNetModule, LossSettings, LRSchedule

CONFIG = ModelConfig(class_names=list(synthetic.CLASS_NAMES), backbone="resnet18",
                     normalization=Normalization(255.0, [0.5] * 3, [0.25] * 3),
                     global_size=64, patch_size=32, min_overlap=0, scene_size=64)


@pytest.fixture(scope="module")
def scenes():
    views = SceneViews(64, 32, 0, CONFIG.normalization, augment=True)
    samples = []
    for seed in range(2):
        scene = synthetic.generate_scene(64, seed, synthetic.SceneParams(
            zone_side=40, blob_radius=(8, 14), road_width=(2, 3), road_spacing=40,
            building_side=(3, 5), building_spacing=10))
        samples.append(views(scene.image, scene.label))
    return samples


def _fit(module, scenes, steps=1):
    loader = DataLoader(scenes, batch_size=2, collate_fn=collate_scenes)
    trainer = L.Trainer(max_steps=steps, accelerator="cpu", logger=False,
                        enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, num_sanity_val_steps=0)
    trainer.fit(module, loader)
    return trainer


def _state(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _changed(before, after):
    return {k for k in before if not torch.equal(before[k], after[k])}


def test_each_stage_updates_only_its_parameters(scenes):
    torch.manual_seed(0)
    losses = LossSettings(sub_batch_size=2, lr_global=1e-3, lr_local=1e-3)
    module = GLNetModule(CONFIG, Stage.GLOBAL, losses)
    before = _state(module.model)
    _fit(module, scenes)
    changed = _changed(before, _state(module.model))
    assert changed and all(k.startswith("global_branch.") for k in changed)
    assert not any("_ext" in k for k in changed)  # stage 1 has no shared maps
    stage1_global = {k: v for k, v in _state(module.model).items()
                     if k.startswith("global_branch.")}

    module = GLNetModule(CONFIG, Stage.GLOBAL_TO_LOCAL, losses, model=module.model)
    before = _state(module.model)
    _fit(module, scenes)
    changed = _changed(before, _state(module.model))
    assert any(k.startswith("local_branch.") for k in changed)
    assert any(k.startswith("aggregation.") for k in changed)
    assert all(k.startswith(("local_branch.", "aggregation.")) for k in changed)

    module = GLNetModule(CONFIG, Stage.LOCAL_TO_GLOBAL, losses, model=module.model)
    fixed = module.model.fixed_global_branch.state_dict()
    for key, value in fixed.items():  # the frozen copy is the stage-1 G
        assert torch.equal(value, stage1_global[f"global_branch.{key}"])
    before = _state(module.model)
    _fit(module, scenes)
    changed = _changed(before, _state(module.model))
    assert any(k.startswith("global_branch.") and "_ext" in k for k in changed)
    assert all(k.startswith(("global_branch.", "aggregation.")) for k in changed)


def test_local_only_ablation_trains_the_plain_local_layers(scenes):
    module = GLNetModule(CONFIG, Stage.GLOBAL_TO_LOCAL, LossSettings(sub_batch_size=4),
                         mode="local")
    before = _state(module.model)
    _fit(module, scenes)
    changed = _changed(before, _state(module.model))
    assert changed and all(k.startswith("local_branch.") and "_ext" not in k for k in changed)


class _RecordRates(L.Callback):
    def __init__(self):
        self.rates = []

    def on_train_batch_start(self, trainer, module, batch, batch_index):
        self.rates.append([group["lr"] for group in trainer.optimizers[0].param_groups])


def _rates_while_fitting(module, scenes, steps, batch_size):
    """Fit ``steps`` steps; return the rates of every group at each step and the group count."""
    record = _RecordRates()
    trainer = L.Trainer(max_steps=steps, accelerator="cpu", logger=False, callbacks=[record],
                        enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False)
    trainer.fit(module, DataLoader(scenes, batch_size=batch_size, collate_fn=collate_scenes))
    return record.rates, len(trainer.optimizers[0].param_groups)


def test_learning_rates_follow_the_poly_schedule_over_the_stage(scenes):
    losses = LossSettings(sub_batch_size=4, lr_global=1e-3, lr_local=2e-4)
    for stage, lr in ((Stage.GLOBAL, 1e-3), (Stage.GLOBAL_TO_LOCAL, 2e-4)):
        rates, groups = _rates_while_fitting(GLNetModule(CONFIG, stage, losses), scenes, 4, 1)
        expected = [[pytest.approx(lr * (1 - step / 4) ** 0.9)] * groups for step in range(4)]
        assert rates == expected  # 2 epochs of 2 steps: one schedule over the stage


def test_a_constant_schedule_keeps_the_starting_rates(scenes):
    losses = LossSettings(sub_batch_size=4, lr_global=1e-3, lr_schedule=LRSchedule.CONSTANT)
    module = GLNetModule(CONFIG, Stage.GLOBAL, losses)
    rates, groups = _rates_while_fitting(module, scenes, 3, 2)
    assert rates == [[1e-3] * groups] * 3
    assert module.hparams["losses"]["lr_schedule"] == "constant"  # a plain str in checkpoints


def test_validation_scores_whole_scenes(scenes):
    module = GLNetModule(CONFIG, Stage.GLOBAL_TO_LOCAL)
    trainer = L.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False,
                        enable_model_summary=False)
    (metrics,) = trainer.validate(module, DataLoader(scenes, batch_size=1,
                                                     collate_fn=collate_scenes))
    assert 0.0 <= metrics["val_miou"] <= 1.0 and 0.0 <= metrics["val_pixel_accuracy"] <= 1.0
    assert module.val_confusion.compute().sum() == 0  # reset for the next epoch


def test_coarse_to_fine_trains_on_the_patches_around_the_foreground():
    label = torch.zeros((64, 64), dtype=torch.uint8)
    label[4:10, 40:46] = 5                       # one roof in the top-right patch
    label[60:, :4] = 255                         # unlabelled: not foreground
    image = torch.randint(0, 255, (3, 64, 64), dtype=torch.uint8)
    sample = SceneViews(64, 32, 0, CONFIG.normalization)(image.numpy(), label.numpy())
    module = GLNetModule(CONFIG, Stage.GLOBAL_TO_LOCAL, LossSettings(sub_batch_size=4),
                         coarse_to_fine=True)
    refined = module.refined(sample)
    # The roof's patch and, as batch norm needs two, its neighbour on the grid.
    assert [(int(w.row_off), int(w.col_off)) for w in refined.windows] == [(0, 32), (32, 0)]
    assert torch.equal(refined.boxes, sample.boxes[1:3])
    seen = []
    forward = module.model.forward
    module.model.forward = lambda g, patches, *a, **k: seen.append(len(patches)) or forward(
        g, patches, *a, **k)
    _fit(module, [sample])
    assert seen == [2]


@pytest.mark.parametrize("stage", [Stage.GLOBAL_TO_LOCAL, Stage.LOCAL_TO_GLOBAL])
def test_the_official_sum_reduction_scales_the_sub_batch_losses(scenes, stage):
    """Summing, as the official code, weighs each sub-batch loss by their count over the mean."""
    from glnet_geo.training.module import LossReduction

    grads = {}
    for reduction in LossReduction:
        torch.manual_seed(0)
        module = GLNetModule(CONFIG, stage, LossSettings(sub_batch_size=4, reduction=reduction))
        module.manual_backward = lambda loss: loss.backward()  # no Trainer needed here
        module.model.train()
        step = module._local_step if stage is Stage.GLOBAL_TO_LOCAL else \
            module._bidirectional_step
        step(scenes)
        grads[reduction] = module.model.aggregation.conv.bias.grad.clone()
    # two scenes of 4 patches each, 1 sub-batch of 4 per scene
    parts = sum(len(s.sub_batches(4)) for s in scenes)
    if stage is Stage.GLOBAL_TO_LOCAL:
        torch.testing.assert_close(grads[LossReduction.SUM], parts * grads[LossReduction.MEAN])
    else:  # the aggregated loss only reaches the aggregation: len(batch) x its sub-batches
        torch.testing.assert_close(grads[LossReduction.SUM],
                                   len(scenes) * grads[LossReduction.MEAN])
    assert LossSettings(reduction="sum").share(36) == 1.0
    assert LossSettings().share(36) == pytest.approx(1 / 36)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_stage_three_with_g_on_the_batch_of_scenes(scenes, reduction):
    """G once on the batch (official) gives the per-scene gradients when batch norm is frozen."""
    from glnet_geo.training.module import GlobalPass

    grads, losses = {}, {}
    for global_pass in GlobalPass:
        for train in (False, True):
            torch.manual_seed(0)
            module = GLNetModule(CONFIG, Stage.LOCAL_TO_GLOBAL, LossSettings(
                sub_batch_size=2, reduction=reduction, global_pass=global_pass))
            module.manual_backward = lambda loss: loss.backward()
            module.model.train(train)
            losses[global_pass, train] = module._bidirectional_step(scenes)
            grads[global_pass, train] = torch.cat([
                module.model.global_branch.fpn.toplayer_ext.weight.grad.flatten(),
                module.model.aggregation.conv.weight.grad.flatten()])
            assert module.model.local_branch.encoder.conv1.weight.grad is None  # L frozen
    torch.testing.assert_close(losses["batch", False], losses["scene", False])
    torch.testing.assert_close(grads["batch", False], grads["scene", False], rtol=1e-4,
                               atol=1e-7)
    # training mode: G's batch norm sees two global views at once, not one
    assert not torch.allclose(grads["batch", True], grads["scene", True], rtol=1e-3)
