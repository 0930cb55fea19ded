import numpy as np
import pytest
import torch
from rasterio.windows import Window

from glnet_geo.checkpoint import ModelConfig, Normalization
from glnet_geo.classes import NO_CLASS
from glnet_geo.datasets import synthetic
from glnet_geo.datasets.sample import SceneViews
from glnet_geo.io.reader import RasterInput
from glnet_geo.models import GLNetMode
from glnet_geo.models.stages import Stage
from glnet_geo.predict import PredictMode, SceneSettings
from glnet_geo.predict.blending import scene_probabilities as raster_probabilities
from glnet_geo.training.evaluation import ScoringMode, evaluate, scene_probabilities

CONFIG = ModelConfig(class_names=list(synthetic.CLASS_NAMES), backbone="resnet18",
                     normalization=Normalization(255.0, [0.5] * 3, [0.25] * 3),
                     global_size=64, patch_size=32, min_overlap=8, scene_size=80,
                     stage=Stage.LOCAL_TO_GLOBAL)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    net = CONFIG.build_model()
    for name, module in net.named_modules():  # make the logits depend on the input
        if isinstance(module, torch.nn.Conv2d) and ("fpn" in name or "aggregation" in name):
            torch.nn.init.kaiming_normal_(module.weight)
    net.freeze_global_copy()
    return net.eval()


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    scene = synthetic.generate_scene(80, seed=1)
    path = tmp_path_factory.mktemp("scene") / "scene.tif"
    synthetic.write_scene(scene, path)
    return scene, path


@pytest.mark.parametrize("mode", ["glnet", "local", "global", "coarse-to-fine"])
def test_in_memory_scene_matches_the_predict_pipeline(model, scene, mode):
    """Validation's whole-scene prediction is predict's, up to the global view's resampling."""
    image, path = scene
    sample = SceneViews(64, 32, 8, CONFIG.normalization)(image.image, image.label)
    ours = scene_probabilities(model, sample, ScoringMode.from_predict_mode(CONFIG, mode), 4)
    settings = SceneSettings.from_config(CONFIG, PredictMode(mode), batch_size=4)
    with RasterInput.open(path, CONFIG.bands, CONFIG.normalization) as raster:
        theirs = raster_probabilities(model, raster, Window(0, 0, 80, 80), settings,
                                      torch.device("cpu"))
    assert ours.shape == theirs.shape == (6, 80, 80)
    # GDAL's decimated read and torch's antialiased resize of the global view differ a little
    assert (ours - theirs).abs().mean() < 0.02
    assert (ours.argmax(0) == theirs.argmax(0)).float().mean() > 0.95


def test_scoring_with_skip_threshold_one_is_plain_scoring(model, scene):
    image, _ = scene
    sample = SceneViews(64, 32, 8, CONFIG.normalization)(image.image, image.label)
    plain = scene_probabilities(model, sample, ScoringMode.from_predict_mode(CONFIG, "glnet"), 4)
    never = scene_probabilities(model, sample,
                                ScoringMode.from_predict_mode(CONFIG, "glnet", 1.0), 4)
    assert torch.equal(plain, never)


def test_evaluate_scores_every_labelled_pixel_once(model, scene):
    image, _ = scene
    label = image.label.copy()
    label[:10] = NO_CLASS
    sample = SceneViews(64, 32, 8, CONFIG.normalization)(image.image, label)
    result = evaluate(model, CONFIG, [sample, sample], ScoringMode(GLNetMode.GLOBAL_TO_LOCAL))
    assert result.confusion.sum() == 2 * 70 * 80
    np.testing.assert_array_equal(result.confusion.sum(1),
                                  2 * np.bincount(image.label[10:].ravel(), minlength=6))
    assert 0 <= result.miou <= 1


def test_local_mode_of_a_stage_one_model_is_refused():
    from glnet_geo.errors import InputError

    config = ModelConfig(class_names=["a", "b"], stage=Stage.GLOBAL)
    with pytest.raises(InputError, match="--mode local"):
        ScoringMode.from_predict_mode(config, "local")


def _sample(scene):
    image, _ = scene
    return SceneViews(64, 32, 8, CONFIG.normalization)(image.image, image.label)


def test_official_protocol_sums_nearest_upsampled_patch_logits(model, scene):
    """The official evaluator's prediction, recomputed here from one forward pass."""
    import torch.nn.functional as F

    from glnet_geo.training.evaluation import official_scene_classes

    sample = _sample(scene)
    mode = ScoringMode.from_predict_mode(CONFIG, "glnet")
    classes = official_scene_classes(model, sample, mode, batch_size=3)
    with torch.no_grad():
        out = model(sample.global_image[None], sample.patches(), sample.boxes,
                    mode=GLNetMode.BIDIRECTIONAL, scene_shape=sample.scene_shape)
    total = torch.zeros(6, 80, 80)
    for logits, window in zip(F.interpolate(out.logits, scale_factor=4, mode="nearest"),
                              sample.windows, strict=True):
        total[(slice(None), *window.toslices())] += logits
    assert (classes == total.argmax(0)).float().mean() > 0.999  # sub-batches: float sums
    ours = scene_probabilities(model, sample, mode, 3).argmax(0)
    assert 0.5 < (classes == ours).float().mean() < 1  # the protocols differ, a little


def test_official_protocol_in_global_mode_upsamples_with_nearest(model, scene):
    import torch.nn.functional as F

    from glnet_geo.training.evaluation import official_scene_classes

    sample = _sample(scene)
    classes = official_scene_classes(model, sample,
                                     ScoringMode.from_predict_mode(CONFIG, "global"))
    with torch.no_grad():
        logits = model.fixed_global_branch(sample.global_image[None]).logits
    expected = F.interpolate(logits, size=(80, 80), mode="nearest")[0].argmax(0)
    assert torch.equal(classes, expected)


def test_official_protocol_scores_with_unknown_in_the_matrix(model, scene):
    config = ModelConfig(**{**CONFIG.to_dict(), "ignore_index": 0})
    sample = _sample(scene)
    ours = evaluate(model, config, [sample], ScoringMode(GLNetMode.BIDIRECTIONAL))
    official = evaluate(model, config, [sample], ScoringMode(GLNetMode.BIDIRECTIONAL),
                        protocol="official")
    assert ours.confusion[0].sum() == 0 and official.confusion.sum() == 80 * 80
    assert official.to_dict()["protocol"] == "official"


def test_official_protocol_refuses_coarse_to_fine(model, scene):
    from glnet_geo.errors import InputError
    from glnet_geo.training.evaluation import official_scene_classes

    mode = ScoringMode.from_predict_mode(CONFIG, "coarse-to-fine")
    with pytest.raises(InputError, match="--protocol official scores the plain network"):
        official_scene_classes(model, _sample(scene), mode)
