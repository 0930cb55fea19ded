"""The README's commands run as written.

Every ``bash`` and ``python`` block of README.md is preceded by a marker:
``<!-- readme-test: run -->`` (run here, in order, in one temporary folder) or
``<!-- readme-test: skip: <reason naming the tests that cover it> -->``.
Run blocks get tiny settings by substitution (:data:`TINY`): fewer training
steps and a smaller demo. The folder starts with what ``make demo`` leaves
(``demo-output/``), made by the demo function at a tiny size.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from glnet_geo.cli import main
from glnet_geo.demo import DemoSettings, run_demo

README = Path(__file__).resolve().parents[1] / "README.md"
MARKER = re.compile(r"<!-- readme-test: (run|skip: .+?) -->")
BLOCK = re.compile(r"^```(bash|python)\n(.*?)^```", re.MULTILINE | re.DOTALL)
#: Substitutions that keep the commands tiny: (README text, what runs here).
TINY = [("--max-steps 100", "--max-steps 2"),
        ("--sample-size 256 --steps-global 30 --steps-local 20 --steps-sharing 10",
         "--sample-size 128 --steps-global 1 --steps-local 1 --steps-sharing 1 "
         "--train-scenes 1")]


@dataclass
class Block:
    """A fenced block of the README."""

    language: str
    code: str
    marker: str | None
    line: int

    @property
    def runs(self) -> bool:
        """Whether the block is marked to run here."""
        return self.marker == "run"


def readme_blocks() -> list[Block]:
    """The README's bash and python blocks, with the marker just above each."""
    text = README.read_text()
    blocks = []
    for match in BLOCK.finditer(text):
        before = text[:match.start()].rstrip().splitlines()
        marker = MARKER.fullmatch(before[-1].strip()) if before else None
        blocks.append(Block(match.group(1), match.group(2), marker.group(1) if marker else None,
                            text.count("\n", 0, match.start()) + 1))
    return blocks


def commands(block: Block) -> list[list[str]]:
    """The shell commands of a bash block, split into words (continuations joined)."""
    joined = block.code.replace("\\\n", " ")
    return [shlex.split(line) for line in joined.splitlines() if line.strip()]


def test_every_block_is_marked():
    blocks = readme_blocks()
    assert len([b for b in blocks if b.runs]) >= 5
    unmarked = [b.line for b in blocks if b.marker is None]
    assert not unmarked, f"README blocks without a readme-test marker at lines {unmarked}"


def test_skipped_blocks_use_real_commands_and_options():
    """A block not run here still names existing commands and options of glnet-geo."""
    runner = CliRunner()
    for block in readme_blocks():
        if block.runs or block.language != "bash":
            continue
        assert "tests/" in block.marker or "make install" in block.marker or \
            "conda" in block.marker, f"line {block.line}: say what covers the skipped block"
        for words in commands(block):
            if words[0] != "glnet-geo":
                continue
            help_text = runner.invoke(main, [words[1], "--help"]).output
            options = [w.split("=")[0] for w in words[2:] if w.startswith("--")]
            missing = [o for o in options if o not in help_text]
            assert not missing, f"line {block.line}: glnet-geo {words[1]} has no {missing}"


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """A folder holding a tiny ``demo-output/``, with the venv's commands first on PATH."""
    run_demo(tmp_path / "demo-output",
             DemoSettings(sample_size=192, train_scenes=2, steps_global=2, steps_local=1,
                          steps_sharing=1),
             echo=lambda line: None)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    return tmp_path


def test_readme_commands_run_as_written(workdir):
    for block in (b for b in readme_blocks() if b.runs):
        code = block.code
        for written, tiny in TINY:
            code = code.replace(written, tiny)
        if block.language == "bash":
            argv = ["bash", "-euo", "pipefail", "-c", code]
        else:
            argv = [sys.executable, "-c", code]
        done = subprocess.run(argv, cwd=workdir, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, (f"README line {block.line} failed:\n{code}\n"
                                      f"{done.stdout[-2000:]}\n{done.stderr[-3000:]}")
    for name in ("classes.tif", "classes.gpkg", "preview.png", "mine.pt", "scores.json",
                 "parcels.gpkg", "buildings.geojson", "api-parcels.gpkg",
                 "small-demo/evaluation.json"):
        assert (workdir / name).is_file(), name
