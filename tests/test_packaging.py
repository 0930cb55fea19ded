"""The installed package: entry points, the cli mapping, the lazy API."""

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import glnet_geo

BIN = Path(sys.executable).parent


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, timeout=120)


def test_console_script_help():
    exe = shutil.which("glnet-geo", path=str(BIN)) or shutil.which("glnet-geo")
    assert exe, "the glnet-geo console script is not installed"
    result = run(exe, "--help")
    assert result.returncode == 0, result.stderr
    assert "Segment ultra-high-resolution GeoTIFFs" in result.stdout
    for name in ("info", "predict", "vectorize", "import-official"):
        assert name in result.stdout


def test_console_script_exits_at_once_with_the_commands_status_and_output(tmp_path):
    exe = shutil.which("glnet-geo", path=str(BIN)) or shutil.which("glnet-geo")
    usage = run(exe, "predict", "--mode", "nope")
    assert usage.returncode == 2 and "'nope' is not one of" in usage.stderr
    missing = run(exe, "info", str(tmp_path / "none.tif"))
    assert missing.returncode == 1
    lines = missing.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"Error: {tmp_path / 'none.tif'} is neither")
    # the exit functions still run, after the command's output
    code = ("import atexit, sys; atexit.register(lambda: print('exit functions ran')); "
            "from glnet_geo.cli import run; sys.argv = ['glnet-geo', '--version']; run()")
    done = run(sys.executable, "-c", code)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [f"glnet-geo, version {glnet_geo.__version__}",
                                        "exit functions ran"]


def test_rio_plugin_help():
    exe = shutil.which("rio", path=str(BIN)) or shutil.which("rio")
    assert exe, "rasterio's rio command is not installed"
    result = run(exe, "glnet", "--help")
    assert result.returncode == 0, result.stderr
    assert "Usage: rio glnet" in result.stdout


def test_cli_is_installed_under_the_package_only():
    assert importlib.util.find_spec("glnet_geo.cli") is not None
    top_level_cli = importlib.util.find_spec("cli")
    if top_level_cli is not None:  # running from a checkout puts the repo root on sys.path
        origin = Path(top_level_cli.origin or "")
        assert "site-packages" not in origin.parts


def test_version_and_lazy_api():
    assert glnet_geo.__version__.count(".") == 2
    for name in ("load_checkpoint", "save_checkpoint", "predict_raster", "vectorize_raster"):
        assert callable(getattr(glnet_geo, name))
    with pytest.raises(AttributeError):
        glnet_geo.no_such_thing  # noqa: B018


def _imports(package: Path) -> dict[str, set[str]]:
    """Map each module of ``package`` to the package's modules it imports, anywhere in it."""
    import ast

    modules = {}
    for path in package.rglob("*.py"):
        parts = path.relative_to(package.parent).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    graph = {}
    for name, path in modules.items():
        targets = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module:
                targets.update(f"{node.module}.{alias.name}" for alias in node.names)
                targets.add(node.module)
        found = set()
        for target in targets:
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
        graph[name] = found
    return graph


def test_no_import_cycle_among_the_modules():
    """Function-level imports count: the modules import one another in one direction only."""
    import graphlib

    graph = _imports(Path(glnet_geo.__file__).parent)
    try:
        graphlib.TopologicalSorter(graph).prepare()
    except graphlib.CycleError as error:
        pytest.fail(f"import cycle: {' -> '.join(error.args[1])}")


def test_every_subpackage_is_listed_in_setup_cfg():
    import configparser

    root = Path(glnet_geo.__file__).parent
    config = configparser.ConfigParser()
    config.read(root.parent / "setup.cfg")
    listed = set(config["options"]["packages"].split())
    found = {".".join(p.parent.relative_to(root.parent).parts) for p in root.rglob("__init__.py")}
    assert found <= listed, f"missing from setup.cfg (a wheel would lack them): {found - listed}"
