"""Errors that name the bad value, what was expected and the fix.

Each class also subclasses the matching built-in exception, so callers that
catch ``ValueError`` or ``FileNotFoundError`` keep working. The command line
prints ``str(error)`` as one line and exits non-zero.
"""

from __future__ import annotations


class GLNetGeoError(Exception):
    """Base class of every error glnet-geo raises on purpose."""


class InputError(GLNetGeoError, ValueError):
    """An input (raster, tensor, option) is not what was expected."""


class CheckpointError(GLNetGeoError, ValueError):
    """A checkpoint is missing, unsafe, from another version or incomplete."""


class OutputExistsError(GLNetGeoError, FileExistsError):
    """An output already exists and ``overwrite`` was not given."""


class OutputError(GLNetGeoError, OSError):
    """An output cannot be written (directory missing or not writable)."""


class WeightsNotFoundError(GLNetGeoError, FileNotFoundError):
    """Pretrained weights were asked for but are not available locally."""


class RasterReadError(InputError):
    """A raster opened but some of its pixels cannot be read (a damaged or missing file)."""
