"""Errors that name the bad value, what was expected and the fix.

Each class also subclasses the matching built-in exception, so callers that
catch ``ValueError`` or ``FileNotFoundError`` keep working. The command line
prints ``str(error)`` as one line and exits non-zero.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TypeVar

Choice = TypeVar("Choice", bound=StrEnum)


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


def parse_choice(choices: type[Choice], value: Choice | str, what: str,
                 option: str | None = None) -> Choice:
    """Return the member of the enum ``choices`` named ``value``.

    Raises:
        InputError: An unknown value, in one line naming ``what``, the choices
            and the command-line ``option`` that sets it, if any.

    """
    try:
        return choices(value)
    except ValueError:
        where = f" ({option})" if option else ""
        raise InputError(f"unknown {what} {value!r}; expected one of "
                         f"{', '.join(m.value for m in choices)}{where}") from None
