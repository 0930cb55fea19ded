import json

import numpy as np
import pytest
import torch

from glnet_geo.classes import NO_CLASS
from glnet_geo.metrics import ConfusionMatrix, scores


def test_confusion_matrix_counts_pixels_and_skips_no_label():
    metric = ConfusionMatrix(3)
    target = torch.tensor([[0, 0, 1], [2, NO_CLASS, 1]])
    preds = torch.tensor([[0, 1, 1], [2, 0, 0]])
    metric.update(preds, target)
    expected = np.array([[1, 1, 0], [1, 1, 0], [0, 0, 1]])
    np.testing.assert_array_equal(metric.compute().numpy(), expected)


def test_iou_miou_and_accuracy_by_hand():
    cm = np.array([[3, 1, 0], [1, 4, 0], [0, 0, 0]])
    s = scores(cm, ["a", "b", "c"])
    np.testing.assert_allclose(s.iou[:2], [3 / 5, 4 / 6])
    assert np.isnan(s.iou[2])  # absent class: no IoU, not in the mean
    assert s.miou == pytest.approx((3 / 5 + 4 / 6) / 2)
    assert s.pixel_accuracy == pytest.approx(7 / 9)
    assert s.class_iou("b") == pytest.approx(4 / 6)


def test_ignored_class_is_dropped_from_matrix_and_mean():
    metric = ConfusionMatrix(3, ignore_index=0)
    target = torch.tensor([0, 0, 1, 2, 2])
    preds = torch.tensor([1, 2, 1, 2, 0])
    metric.update(preds, target)
    s = scores(metric, ["unknown", "x", "y"])
    assert s.ignore_index == 0
    assert s.confusion[0].sum() == 0  # labels of the ignored class are not scored
    assert s.confusion[2, 0] == 1  # predicting it elsewhere is still an error
    assert np.isnan(s.iou[0])
    assert s.miou == pytest.approx((1.0 + 0.5) / 2)


def test_perfect_prediction_scores_one():
    rng = np.random.default_rng(0)
    labels = torch.from_numpy(rng.integers(0, 4, (2, 16, 16)))
    metric = ConfusionMatrix(4)
    metric.update(labels, labels)
    s = scores(metric, list("abcd"))
    assert s.miou == 1.0 and s.pixel_accuracy == 1.0


def test_to_dict_is_json_and_plot_writes_png(tmp_path):
    s = scores(np.array([[5, 0], [2, 3]]), ["background", "building"])
    data = json.loads(json.dumps(s.to_dict()))
    assert data["iou"]["building"] == pytest.approx(3 / 5)
    assert data["confusion_matrix"] == [[5, 0], [2, 3]]
    assert "mIoU" in s.table()
    s.plot_confusion(tmp_path / "cm.png")
    assert (tmp_path / "cm.png").read_bytes()[:4] == b"\x89PNG"


def test_official_scoring_keeps_the_ignored_class_and_counts_absent_classes_as_zero():
    metric = ConfusionMatrix(4)  # the official evaluator's matrix keeps "unknown" (class 0)
    target = torch.tensor([0, 0, 1, 2, 2])
    preds = torch.tensor([1, 2, 1, 2, 0])
    metric.update(preds, target)
    s = scores(metric, ["unknown", "x", "y", "absent"], ignore_index=0, official=True)
    assert s.confusion[0].sum() == 2  # unknown pixels stay in the matrix
    # x: 1 / (1 + 1 predicted on unknown) ; y: 1 / (2 + 1 predicted on unknown) ; absent: 0
    assert s.miou == pytest.approx((1 / 2 + 1 / 3 + 0) / 3)
    assert s.to_dict()["protocol"] == "official"
    assert scores(metric, list("uxya"), ignore_index=0).to_dict()["protocol"] == "ours"
