"""The ``glnet-geo`` command line (also ``rio glnet``): thin click commands.

Each command lives in the module named after it, validates its arguments and
calls one library function. Errors that glnet-geo raises on purpose
(:class:`glnet_geo.errors.GLNetGeoError`) print as one line and exit 1;
``--verbose`` shows the traceback instead.
"""

from __future__ import annotations

import importlib
import sys
import warnings
from typing import Any

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


#: What each command keeps when it is stopped, after "nothing half-written was left under a
#: final name and no temporary file was left" (the table in docs/guarantees.md).
KEPT_ON_STOP = {
    "predict": "the outputs of inputs finished before the stop are kept; with --resume the "
               "finished scenes are too, rerun with --resume to finish",
    "train": "no checkpoint was written under -o; the stages finished before the stop and "
             "Lightning's checkpoints in the run folder are kept for --resume",
    "evaluate": "no report was written",
}


def _one_line_warnings() -> None:
    """Show library warnings as one log line each; drop rasterio's NotGeoreferencedWarning.

    glnet-geo says itself, in one line, when an input has no CRS or geotransform
    (:func:`glnet_geo.io.reader.check_georeferencing`), so rasterio's own two-line warning
    about it is dropped; any other warning becomes ``WARNING <category>: <first line>``.
    """
    import logging

    from rasterio.errors import NotGeoreferencedWarning

    log = logging.getLogger("glnet_geo")

    def show(message: Warning | str, category: type[Warning], filename: str, lineno: int,
             file: object = None, line: str | None = None) -> None:
        text = str(message).strip().splitlines()
        log.warning("%s: %s", category.__name__, text[0] if text else "")

    warnings.showwarning = show
    warnings.simplefilter("ignore", NotGeoreferencedWarning)
    _quiet_libtiff()


def _quiet_libtiff() -> None:
    """Stop libtiff from printing straight to stderr where GDAL does not catch its messages.

    GDAL gives each TIFF it opens its own error handler, but libtiff reports some failures
    (a write refused by a full disk: ``_tiffWriteProc: No space left on device.``) through
    its process-wide default handler, which prints them raw. Unsetting that default (Linux:
    the libtiff that rasterio loaded is found in ``/proc/self/maps``) leaves GDAL's handlers,
    and so GDAL's reasons in our one-line errors, as they were.
    """
    import ctypes

    try:
        with open("/proc/self/maps") as maps:
            paths = {line.split()[-1] for line in maps if "libtiff" in line and ".so" in line}
    except OSError:  # not Linux
        return
    for path in paths:
        try:
            library = ctypes.CDLL(path)
        except OSError:
            continue
        for name in ("TIFFSetErrorHandler", "TIFFSetWarningHandler"):
            setter = getattr(library, name, None)
            if setter is not None:
                setter.restype = ctypes.c_void_p
                setter.argtypes = [ctypes.c_void_p]
                setter(None)


class GLNetGroup(click.Group):
    """A click group that turns expected errors and stops into one-line messages.

    SIGTERM and SIGHUP are handled like Ctrl-C (:class:`~glnet_geo.cli.signals.StopSignals`):
    the command's cleanup runs and one line says what was stopped, by what, and what was kept;
    the exit status is 128 + the signal's number (130 for Ctrl-C, 143 for SIGTERM).
    """

    def invoke(self, ctx: click.Context) -> Any:  # noqa: D102
        from glnet_geo.cli.signals import StopSignals
        from glnet_geo.errors import GLNetGeoError

        with StopSignals() as stops, warnings.catch_warnings():
            if not ctx.params.get("verbose"):
                _one_line_warnings()
            try:
                return super().invoke(ctx)
            except GLNetGeoError as exc:
                if ctx.params.get("verbose"):
                    raise
                click.echo(f"Error: {exc}", err=True)
                sys.exit(1)
            except OSError as exc:
                # a raster read deep in a library (torchgeo's datasets) that is not ours to wrap
                from glnet_geo.io.reader import unreadable_raster

                error = unreadable_raster(exc)
                if error is None or ctx.params.get("verbose"):
                    raise
                click.echo(f"Error: {error}", err=True)
                sys.exit(1)
            except KeyboardInterrupt:
                if ctx.params.get("verbose"):
                    raise
                command = ctx.invoked_subcommand or "glnet-geo"
                kept = KEPT_ON_STOP.get(command)
                click.echo(f"Error: {command} stopped by {stops.describe()}; nothing "
                           "half-written was left under a final name and no temporary file "
                           f"was left{'; ' + kept if kept else ''}", err=True)
                sys.exit(stops.exit_code)


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

    from glnet_geo.allocator import keep_freed_memory

    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    keep_freed_memory()  # before torch allocates anything (see glnet_geo.allocator)


for _module, _name in COMMANDS:
    main.add_command(importlib.import_module(f"glnet_geo.cli.{_module}").command, _name)


def run() -> None:
    """Run the CLI as the ``glnet-geo`` console script, then exit at once.

    Once a command is done, Python's own teardown with torch loaded (its CUDA
    build's libraries unloading) takes about 0.7 s more on a 2-core machine,
    with nothing left to do. So, as ``sys.exit`` would, this runs the exit
    functions (``atexit``: logging, multiprocessing's children, finalizers)
    and flushes the streams, then leaves with :func:`os._exit`, skipping the
    rest. Every output is closed and renamed by then. After a Dask run, or
    with a thread still running, it exits the usual way instead (a cluster's
    workers must see it close), as do ``rio glnet`` and calls of :func:`main`.
    """
    import atexit
    import os

    try:
        main(prog_name="glnet-geo")
        code = 0  # not reached: click's standalone mode always exits
    except SystemExit as stop:
        code = stop.code
    if code is None:
        code = 0
    elif not isinstance(code, int):  # sys.exit("message")
        print(code, file=sys.stderr)
        code = 1
    if "distributed" in sys.modules or _threads_still_running():
        sys.exit(code)  # a Dask cluster or a thread may still be winding down: the usual exit
    atexit._run_exitfuncs()  # what the interpreter runs first on exit
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe or stream: nothing more can be said
            pass
    os._exit(code)


def _threads_still_running() -> bool:
    """Whether a thread other than the main one, that the usual exit would wait for, is alive."""
    import threading

    return any(t.is_alive() and not t.daemon for t in threading.enumerate()
               if t is not threading.main_thread())
