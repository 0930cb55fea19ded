"""The package's layout: its face, and modules that import each other in one direction."""

from __future__ import annotations

import ast
import importlib
import importlib.util
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

from fresh_process import modules_loaded

import glnet_geo.vectorize as face

PACKAGE = Path(face.__file__).parent


def imports(path: Path) -> set[str]:
    """Modules of the package that a module imports, at any level of its code."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = f"{face.__name__}.{base}".rstrip(".")
            names = [base, *(f"{base}.{a.name}" for a in node.names)]
        else:
            continue
        found |= {n for n in names if n == face.__name__
                  or (n.startswith(face.__name__ + ".") and n.count(".") == 2)}
    return found


def test_every_public_name_resolves():
    for name in face.__all__:
        value = getattr(face, name)
        assert value is not None
    assert set(face.__all__) <= set(dir(face))
    assert importlib.import_module("glnet_geo").vectorize_raster is face.vectorize_raster


def test_modules_import_each_other_in_one_direction_and_never_the_face():
    graph = {}
    for path in sorted(PACKAGE.glob("*.py")):
        if path.name == "__init__.py":
            continue
        name = f"{face.__name__}.{path.stem}"
        deps = imports(path)
        assert face.__name__ not in deps, f"{name} imports the package's face"
        graph[name] = deps - {name}
        text = path.read_text()
        assert "# ----" not in text, f"{name} still has banner sections"
    try:
        tuple(TopologicalSorter(graph).static_order())
    except CycleError as exc:
        raise AssertionError(f"import cycle: {exc.args[1]}") from None


def test_formats_load_nothing_heavy():
    code = "import glnet_geo.vectorize.formats as f; f.describe()"
    assert modules_loaded(code, ["numpy", "rasterio", "shapely", "pyogrio"]) == []


def test_old_module_paths_are_gone():
    for old in ("glnet_geo.dissolve", "glnet_geo.regularize"):
        assert importlib.util.find_spec(old) is None
    assert not (PACKAGE.parent / "vectorize.py").exists()
