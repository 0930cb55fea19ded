"""The ``glnet-geo`` command line (also ``rio glnet``): thin click commands.

Each command lives in the module named after it, validates its arguments and
calls one library function. Errors that glnet-geo raises on purpose
(:class:`glnet_geo.errors.GLNetGeoError`) print as one line and exit 1;
``--verbose`` shows the traceback instead.
"""

from __future__ import annotations

import importlib
import sys

import click

import glnet_geo

# (module, command name): each module defines a click command called ``command``.
COMMANDS = (
    ("info", "info"),
    ("predict", "predict"),
    ("import_official", "import-official"),
    ("vectorize", "vectorize"),
    ("train", "train"),
    ("evaluate", "evaluate"),
    ("demo", "demo"),
)


class GLNetGroup(click.Group):
    """A click group that turns expected errors into one-line messages."""

    def invoke(self, ctx: click.Context):  # noqa: D102
        from glnet_geo.errors import GLNetGeoError

        try:
            return super().invoke(ctx)
        except GLNetGeoError as exc:
            if ctx.params.get("verbose"):
                raise
            click.echo(f"Error: {exc}", err=True)
            sys.exit(1)
        except KeyboardInterrupt:
            click.echo("Error: interrupted; no output was left under its final name", err=True)
            sys.exit(130)


@click.group(name="glnet", cls=GLNetGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(glnet_geo.__version__, prog_name="glnet-geo")
@click.option("--verbose", "-v", is_flag=True, help="Show tracebacks and debug logging.")
def main(verbose: bool) -> None:
    """Segment ultra-high-resolution GeoTIFFs with GLNet.

    \b
    Example:
      glnet-geo predict model.pt scene.tif -o classes.tif --polygons classes.gpkg
    """
    import logging

    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")


for _module, _name in COMMANDS:
    main.add_command(importlib.import_module(f"glnet_geo.cli.{_module}").command, _name)
