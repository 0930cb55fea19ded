"""Precisions: what each device runs, refusals, and bf16 against fp32 on a trained model."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
import torch

from glnet_geo.checkpoint import save_checkpoint
from glnet_geo.demo import DemoSettings, model_config, train_models, write_sample_scene
from glnet_geo.errors import InputError
from glnet_geo.precision import Precision, native_bf16, resolve_precision, supported_precisions
from glnet_geo.predict import predict_raster

BF16 = pytest.mark.skipif(not native_bf16("cpu"), reason="this CPU has no native bf16")


def test_auto_is_the_fastest_native_precision_of_the_cpu():
    expected = Precision.BF16 if native_bf16("cpu") else Precision.FP32
    assert resolve_precision("auto", "cpu") is expected
    assert supported_precisions("cpu")[-1] is expected
    assert resolve_precision("fp32", "cpu") is Precision.FP32


def test_auto_is_fp32_on_a_cpu_without_native_bf16(monkeypatch):
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: False)
    assert resolve_precision("auto", "cpu") is Precision.FP32
    with pytest.raises(InputError, match=r"--precision bf16 cannot run on cpu.*supports fp32"):
        resolve_precision("bf16", "cpu")


@pytest.mark.parametrize(("value", "words"), [
    ("fp16", ["--precision fp16", "only on CUDA", "--precision auto"]),
    ("fp64", ["unknown precision 'fp64'", "auto, fp32, bf16, fp16"]),
])
def test_a_precision_the_cpu_cannot_run_is_refused(value, words):
    with pytest.raises(InputError) as error:
        resolve_precision(value, "cpu")
    for word in words:
        assert word in str(error.value)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A briefly trained ResNet-18 G->L (the demo's recipe, fewer steps) and a held-aside scene."""
    folder = tmp_path_factory.mktemp("trained")
    settings = DemoSettings(train_scenes=8, steps_global=40, steps_local=40, steps_sharing=10)
    glnet, _ = train_models(settings, echo=lambda line: None)
    checkpoint = save_checkpoint(folder / "glnet.pt", glnet, model_config())
    scene = folder / "scene.tif"
    write_sample_scene(scene, folder / "labels.tif", size=384, seed=12345)
    return checkpoint, scene


@BF16
def test_bf16_classes_agree_with_fp32_on_a_trained_model(trained, tmp_path):
    checkpoint, scene = trained
    classes = {}
    for precision in ("fp32", "bf16"):
        result = predict_raster(checkpoint, scene, tmp_path / f"{precision}.tif",
                                precision=precision, device="cpu", progress=False)
        assert result.precision == precision
        with rasterio.open(result.classes) as src:
            classes[precision] = src.read(1)
            assert src.tags()["precision"] == precision
    assert len(np.unique(classes["fp32"])) >= 3, "the model must have learned several classes"
    agreement = np.mean(classes["bf16"] == classes["fp32"])
    assert agreement >= 0.995, f"bf16 agrees with fp32 on {100 * agreement:.2f} % of the pixels"
