import json

import pytest
import torch
from click.testing import CliRunner

from glnet_geo.checkpoint import ModelConfig, Normalization, save_checkpoint
from glnet_geo.classes import DEEPGLOBE
from glnet_geo.cli import main
from glnet_geo.datasets import synthetic
from glnet_geo.models.stages import Stage


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def one_line_error(result, *words):
    assert result.exit_code != 0
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error:"), result.output
    for word in words:
        assert word in lines[0], lines[0]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return synthetic.write_custom_dataset(tmp_path_factory.mktemp("tiles"), count=1, size=64,
                                          seed=6)


def _checkpoint(path, names, stage=Stage.GLOBAL_TO_LOCAL):
    config = ModelConfig(class_names=list(names), backbone="resnet18", global_size=64,
                         patch_size=32, min_overlap=0, scene_size=64, stage=stage,
                         normalization=Normalization(255.0, [0.5] * 3, [0.25] * 3))
    torch.manual_seed(0)
    return save_checkpoint(path, config.build_model(), config)


def test_evaluate_prints_and_writes_scores(files, tmp_path):
    checkpoint = _checkpoint(tmp_path / "m.pt", synthetic.CLASS_NAMES)
    out = tmp_path / "scores.json"
    args = ["evaluate", checkpoint, "custom", "--images", files.images[0], "--labels",
            files.vector, "--label-field", "class", "--json", out]
    result = invoke(*args, "--mode", "local")
    assert result.exit_code == 0, result.output
    assert "mIoU" in result.output and "pixel accuracy" in result.output
    report = json.loads(out.read_text())
    assert report["mode"] == "local" and set(report["iou"]) == set(synthetic.CLASS_NAMES)
    assert sum(map(sum, report["confusion_matrix"])) == 64 * 64
    assert out.with_suffix(".png").exists()
    one_line_error(invoke(*args), "scores.json already exists", "--overwrite")
    result = invoke(*args, "--mode", "coarse-to-fine", "--skip-threshold", "0.9", "--overwrite")
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert report["mode"] == "coarse-to-fine" and report["skip_threshold"] == 0.9


def test_more_classes_than_the_checkpoint(files, tmp_path):
    checkpoint = _checkpoint(tmp_path / "m.pt", ["urban", "rural"])
    result = invoke("evaluate", checkpoint, "custom", "--images", files.images[0], "--labels",
                    files.labels[0])
    one_line_error(result, "holds class", "the classes of", "m.pt")
    result = invoke("evaluate", checkpoint, "custom", "--images", files.images[0], "--labels",
                    files.labels[0], "--classes", files.classes)
    one_line_error(result, "the labels have 6 classes", "predicts 2")
    result = invoke("evaluate", checkpoint, "deepglobe", "--root", tmp_path)
    one_line_error(result, "deepglobe have 7 classes")


def test_local_mode_needs_a_trained_local_branch(files, tmp_path):
    checkpoint = _checkpoint(tmp_path / "g.pt", synthetic.CLASS_NAMES, Stage.GLOBAL)
    result = invoke("evaluate", checkpoint, "custom", "--images", files.images[0], "--labels",
                    files.labels[0], "--mode", "local")
    one_line_error(result, "--mode local")


def test_a_report_that_cannot_be_written_is_refused_before_the_evaluation(files, tmp_path,
                                                                         monkeypatch):
    import glnet_geo.training.evaluation

    def evaluate(*args, **kwargs):
        raise AssertionError("evaluated before the check")

    monkeypatch.setattr(glnet_geo.training.evaluation, "evaluate_checkpoint", evaluate)
    checkpoint = _checkpoint(tmp_path / "m.pt", synthetic.CLASS_NAMES)
    result = invoke("evaluate", checkpoint, "custom", "--images", files.images[0], "--labels",
                    files.labels[0], "--classes", files.classes, "--json",
                    tmp_path / "missing" / "scores.json")
    one_line_error(result, "missing does not exist")


def test_official_protocol_is_named_in_the_json(files, tmp_path):
    checkpoint = _checkpoint(tmp_path / "m.pt", synthetic.CLASS_NAMES)
    out = tmp_path / "scores.json"
    result = invoke("evaluate", checkpoint, "custom", "--images", files.images[0], "--labels",
                    files.vector, "--label-field", "class", "--protocol", "official",
                    "--json", out)
    assert result.exit_code == 0, result.output
    assert "protocol: official" in result.output
    assert json.loads(out.read_text())["protocol"] == "official"


def test_crossvali_needs_the_deepglobe_paper_split(files, tmp_path):
    checkpoint = _checkpoint(tmp_path / "m.pt", synthetic.CLASS_NAMES)
    result = invoke("evaluate", checkpoint, "custom", "--images", files.images[0], "--labels",
                    files.vector, "--label-field", "class", "--split", "crossvali")
    one_line_error(result, "--split crossvali", "crossvali.txt, 207 ids", "--paper-split")


def test_paper_split_scores_crossvali_by_default_and_names_the_list(tmp_path, caplog):
    from glnet_geo.datasets.deepglobe import paper_split_ids

    root = tmp_path / "deepglobe"
    synthetic.write_deepglobe_layout(root, size=64, ids=paper_split_ids("crossvali")[:1])
    synthetic.write_deepglobe_layout(root, size=64, ids=paper_split_ids("test")[:1], seed=3,
                                     folder="test_data")
    config = ModelConfig(class_names=list(DEEPGLOBE.names), ignore_index=DEEPGLOBE.ignore_index,
                         backbone="resnet18", global_size=64, patch_size=32, min_overlap=0,
                         scene_size=64, normalization=Normalization(255.0, [0.5] * 3, [0.25] * 3))
    torch.manual_seed(0)
    checkpoint = save_checkpoint(tmp_path / "dg.pt", config.build_model(), config)
    out = tmp_path / "paper.json"
    result = invoke("evaluate", checkpoint, "deepglobe", "--root", root, "--paper-split",
                    "--protocol", "official", "--json", out)
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert report["split"] == "crossvali" and report["split_file"] == "crossvali.txt"
    assert report["split_ids"] == 207 and report["protocol"] == "official"
    assert not [r for r in caplog.records if "never scores" in r.getMessage()]
    result = invoke("evaluate", checkpoint, "deepglobe", "--root", root, "--paper-split",
                    "--split", "test")
    assert result.exit_code == 0, result.output
    (warning,) = [r.getMessage() for r in caplog.records if "never scores" in r.getMessage()]
    assert "test.txt (142 ids), which the official code never scores" in warning
    assert "--split crossvali (207 ids)" in warning
