from pathlib import Path

from glnet_geo.models.stages import Stage
from glnet_geo.training import progress, trainer
from glnet_geo.training.progress import STAGE_WORK, TextProgress
from glnet_geo.training.settings import TrainSettings
from glnet_geo.training.trainer import build_trainer


def callbacks(monkeypatch, tmp_path: Path, terminal: bool, **settings):
    monkeypatch.setattr(trainer, "is_terminal", lambda: terminal)
    built = build_trainer(TrainSettings(max_steps=2, **settings), tmp_path, Stage.GLOBAL,
                          position=1, total=3)
    return built, [c for c in built.callbacks if isinstance(c, TextProgress)]


def test_a_bar_on_a_terminal_and_lines_elsewhere(monkeypatch, tmp_path):
    built, lines = callbacks(monkeypatch, tmp_path, terminal=True)
    assert built.progress_bar_callback is not None and not lines
    built, lines = callbacks(monkeypatch, tmp_path, terminal=False, log_every=5)
    assert built.progress_bar_callback is None
    assert [(c.stage, c.position, c.total, c.every) for c in lines] == [(Stage.GLOBAL, 1, 3, 5)]
    built, lines = callbacks(monkeypatch, tmp_path, terminal=False, progress=False)
    assert built.progress_bar_callback is None and not lines


def test_every_stage_has_a_description():
    assert set(STAGE_WORK) == set(Stage)
    assert progress.is_terminal() in (True, False)
