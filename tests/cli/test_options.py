from click.testing import CliRunner
from fresh_process import modules_loaded

from glnet_geo.cli import main
from glnet_geo.cli.options import LibraryChoice, library
from glnet_geo.predict import PredictMode
from glnet_geo.training.module import LossSettings
from glnet_geo.training.settings import StagePlan, TrainSettings


def test_choices_and_defaults_come_from_the_library():
    assert LibraryChoice("glnet_geo.predict.settings:PredictMode").choices == tuple(PredictMode)
    assert library("glnet_geo.training.settings:TrainSettings.global_size") == \
        TrainSettings.global_size
    text = CliRunner().invoke(main, ["train", "--help"], terminal_width=200).output
    assert f"[{'|'.join(StagePlan)}]" in text
    assert f"[default: {LossSettings.lr_global}]" in text and "(dynamic)" not in text


def test_a_library_choice_refuses_other_values_in_one_line(tmp_path):
    result = CliRunner().invoke(main, ["train", "deepglobe", "--stage", "four"])
    assert result.exit_code == 2 and "'four' is not one of 'global'" in result.output


def test_the_group_help_imports_neither_torch_nor_lightning():
    code = ("from click.testing import CliRunner; from glnet_geo.cli import main; "
            "assert CliRunner().invoke(main, ['--help']).exit_code == 0")
    assert modules_loaded(code, ["torch", "lightning"], timeout=60) == []
