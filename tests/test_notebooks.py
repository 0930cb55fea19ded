"""The notebooks run from top to bottom; a failing cell fails the test.

Each notebook runs in its own temporary folder with a kernel on this
interpreter (a kernel spec written for the test, so the venv's packages are
the ones imported whatever Jupyter kernels the machine has). They are stored
with their outputs (``notebooks/execute.py`` writes them), so that browsing
the repository shows the plots.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))
KERNEL = "glnet-geo-tests"


@pytest.fixture
def kernel(tmp_path, monkeypatch):
    """A Jupyter kernel spec that starts ipykernel with this very Python."""
    spec = tmp_path / "jupyter" / "kernels" / KERNEL
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "glnet-geo tests", "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    return KERNEL


def test_there_are_two_notebooks_stored_with_their_outputs():
    assert [p.name for p in NOTEBOOKS] == ["01_predict_and_export.ipynb",
                                            "02_train_on_your_tiles.ipynb"]
    for path in NOTEBOOKS:
        notebook = nbformat.read(path, as_version=4)
        nbformat.validate(notebook)
        code = [cell for cell in notebook.cells if cell.cell_type == "code"]
        # executed top to bottom in one run
        assert [cell.execution_count for cell in code] == list(range(1, len(code) + 1))
        outputs = [o for cell in code for o in cell.outputs]
        assert not [o for o in outputs if o.output_type == "error"], path.name
        assert not [o for o in outputs if o.get("name") == "stderr"], path.name
        figures = [o for o in outputs if {"image/png", "image/jpeg"} & set(o.get("data", {}))]
        assert len(figures) >= 3, f"{path.name}: the plots are stored"
        text = path.read_text()
        for local in ("/tmp/", "/home/", "/root/", "site-packages"):
            assert local not in text, f"{path.name} names a local path ({local})"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path, kernel, tmp_path):
    notebook = nbformat.read(path, as_version=4)
    workdir = tmp_path / "run"
    workdir.mkdir()
    client = NotebookClient(notebook, kernel_name=kernel, timeout=600,
                            resources={"metadata": {"path": str(workdir)}})
    client.execute()  # raises CellExecutionError, naming the cell, when one fails
    errors = [o for c in notebook.cells if c.cell_type == "code" for o in c.outputs
              if o.output_type == "error"]
    assert not errors
