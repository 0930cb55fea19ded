import pytest
import yaml

from glnet_geo.errors import InputError
from glnet_geo.training.data import DataSettings
from glnet_geo.training.module import LossSettings
from glnet_geo.training.run_config import FORMAT, RunConfig
from glnet_geo.training.settings import TrainSettings


def run() -> RunConfig:
    return RunConfig(
        data=DataSettings("custom", images=["tiles/*.tif"], labels=["labels.gpkg"],
                          label_field="class"),
        training=TrainSettings(plan="global", backbone="resnet18", max_steps=5, seed=3,
                               losses=LossSettings(gamma=3.0, lr_schedule="constant")),
        output="model.pt")


def test_yaml_round_trip_is_exact(tmp_path):
    path = run().save(tmp_path / "run.yaml", classes={"names": ("a", "b")})
    text = path.read_text()
    assert text.startswith(f"format: {FORMAT}\n")
    data = yaml.safe_load(text)
    assert data["training"]["losses"]["lr_schedule"] == "constant"
    assert data["classes"] == {"names": ["a", "b"]} and "torch" in data["versions"]
    assert RunConfig.load(path) == run()


@pytest.mark.parametrize(("text", "words"), [
    ("just: text", ["not a glnet-geo run file"]),
    (f"format: {FORMAT}\nformat_version: 9\n", ["format version 9"]),
    (f"format: {FORMAT}\nformat_version: 1\noutput: m.pt\ndata: {{kind: custom}}\n"
     "training: {}\n", ["does not describe a run", "--images"]),
    (f"format: {FORMAT}\nformat_version: 1\noutput: m.pt\ndata: {{kind: inria, root: r}}\n"
     "training: {wings: 2}\n", ["does not describe a run", "wings"]),
    ("a: [unclosed", ["cannot be read as YAML"]),
])
def test_bad_run_files_are_one_line(tmp_path, text, words):
    path = tmp_path / "run.yaml"
    path.write_text(text)
    with pytest.raises(InputError) as error:
        RunConfig.load(path)
    assert "\n" not in str(error.value)
    for word in words:
        assert word in str(error.value)
