"""Run the notebooks from top to bottom and store them with their outputs.

    python notebooks/execute.py [NOTEBOOK ...]

Each notebook runs in a fresh temporary folder (what it writes is thrown
away), on this interpreter's kernel. Outputs are kept so that the plots show
when the repository is browsed; standard-error streams (library warnings,
which name local paths) are left out. ``tests/test_notebooks.py`` runs them
again and checks what is stored.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

import nbformat
from nbclient import NotebookClient

HERE = Path(__file__).resolve().parent


KERNEL = "glnet-geo-notebooks"


def execute(path: Path) -> None:
    """Execute ``path`` in a temporary folder and write it back with its outputs.

    The kernel is this interpreter (a kernel spec written for the run), so the
    notebook imports the packages of this environment; figures are stored by
    the kernel's inline backend.
    """
    notebook = nbformat.read(path, as_version=4)
    with tempfile.TemporaryDirectory() as workdir:
        spec = Path(workdir) / "jupyter" / "kernels" / KERNEL
        spec.mkdir(parents=True)
        (spec / "kernel.json").write_text(json.dumps({
            "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": "glnet-geo", "language": "python"}))
        os.environ["JUPYTER_PATH"] = str(Path(workdir) / "jupyter")
        run = Path(workdir) / "run"
        run.mkdir()
        NotebookClient(notebook, kernel_name=KERNEL, timeout=1200,
                       resources={"metadata": {"path": str(run)}}).execute()
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                       "language": "python"}
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.outputs = [o for o in cell.outputs
                            if not (o.output_type == "stream" and o.name == "stderr")]
    nbformat.write(notebook, path)


if __name__ == "__main__":
    for name in sys.argv[1:] or sorted(p.name for p in HERE.glob("*.ipynb")):
        execute(HERE / Path(name).name)
        print("executed", name)
