"""``glnet-geo demo`` at a tiny size."""

from __future__ import annotations

from click.testing import CliRunner

from glnet_geo.cli import main

TINY = ["--sample-size", "128", "--train-scenes", "1", "--steps-global", "1",
        "--steps-local", "1", "--steps-sharing", "1"]


def test_demo_prints_the_table_and_the_outputs(tmp_path):
    output = tmp_path / "demo"
    result = CliRunner().invoke(main, ["demo", "-o", str(output), *TINY])
    assert result.exit_code == 0, result.output
    for row in ("global-only", "local-only", "GLNet (G->L)"):
        assert row in result.output
    for name in ("classes.tif", "classes.gpkg", "preview.png", "evaluation.json"):
        assert str(output / name) in result.output
        assert (output / name).is_file()


def test_demo_on_a_used_folder_is_one_line_error(tmp_path):
    (tmp_path / "old.txt").write_text("x")
    result = CliRunner().invoke(main, ["demo", "-o", str(tmp_path), *TINY])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "--overwrite" in lines[0] and str(tmp_path) in lines[0]


def test_demo_help_has_an_example():
    result = CliRunner().invoke(main, ["demo", "--help"])
    assert result.exit_code == 0
    assert "glnet-geo demo -o demo-output" in result.output


def test_demo_defaults_are_the_demo_settings():
    from dataclasses import fields

    import click

    from glnet_geo.cli.demo import command
    from glnet_geo.demo import DemoSettings

    context = click.Context(command)
    defaults = {p.name: p.get_default(context) for p in command.params}
    for f in fields(DemoSettings):
        if f.name in defaults:
            assert defaults[f.name] == f.default, f.name
