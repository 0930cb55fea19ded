"""Temporary files beside an output, and the ones a killed run left there.

Every output is first written under hidden names beside its final path,
``.<name>.<token><suffix>``, and moved to the final path only when complete.
A :class:`Staging` holds an exclusive :func:`fcntl.flock` on its own
``.<name>.<token>.lock`` for as long as it lives; the kernel releases it when
the process ends, however it ends (``SIGKILL`` and power loss included). So
the next run writing the same output can tell the temporaries of a run that
is gone (their lock is free, or missing) from those of a run still writing
(their lock is held), and :func:`remove_stale` removes only the former: two
runs may write the same output at once, and a killed run never leaves files
that confuse the next one.

Where :mod:`fcntl` does not exist (Windows) nothing is locked and nothing is
taken as stale.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import uuid
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None

log = logging.getLogger(__name__)

#: Suffix of the lock file of a staging.
LOCK = ".lock"
#: Suffix of a lock file while it is being created.
PENDING = "-pending"
#: Length of the hexadecimal token that names one staging.
TOKEN_LENGTH = 8


def _token_pattern(final: Path) -> re.Pattern[str]:
    return re.compile(rf"^\.{re.escape(final.name)}\.([0-9a-f]{{{TOKEN_LENGTH}}})[.-]")


def _is_held(lock: Path) -> bool:
    """Whether another open file description holds ``lock`` (a run still writing)."""
    try:
        fd = os.open(lock, os.O_RDWR)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # also releases the lock just taken
    return False


def remove_stale(final: str | os.PathLike) -> list[Path]:
    """Remove the temporaries that runs which ended left beside ``final``.

    A temporary is stale when the lock of its staging is free or missing;
    those of a run still writing (its lock held) are kept.

    Returns:
        The paths removed.

    """
    final = Path(final)
    if fcntl is None or not final.parent.is_dir():
        return []
    pattern = _token_pattern(final)
    by_token: dict[str, list[Path]] = {}
    for entry in final.parent.iterdir():
        match = pattern.match(entry.name)
        if match:
            by_token.setdefault(match.group(1), []).append(entry)
    removed = []
    for token, entries in by_token.items():
        if any(_is_held(final.with_name(f".{final.name}.{token}{suffix}"))
               for suffix in (LOCK, PENDING)):
            continue
        for entry in sorted(entries, key=lambda p: p.name.endswith(LOCK)):  # the lock last
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
            removed.append(entry)
    if removed:
        log.info("removed %d temporary file(s) of an ended run beside %s", len(removed), final)
    return removed


class Staging:
    """Hidden temporary paths beside ``final``, owned by this run while it lives.

    Creating one removes the stale temporaries of ended runs
    (:func:`remove_stale`) and takes the lock; :meth:`close` removes every
    path handed out that is still there, then the lock.

    Args:
        final: The output's final path.

    """

    def __init__(self, final: str | os.PathLike) -> None:
        self.final = Path(final)
        self.token = uuid.uuid4().hex[:TOKEN_LENGTH]
        self._paths: list[Path] = []
        self._fd: int | None = None
        remove_stale(self.final)
        if fcntl is not None:
            lock = self.path(LOCK)
            # locked under another name first, so that no other run ever sees it unlocked
            pending = self.final.with_name(f".{self.final.name}.{self.token}{PENDING}")
            fd = os.open(pending, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
            fcntl.flock(fd, fcntl.LOCK_EX)
            os.replace(pending, lock)
            self._fd = fd

    def path(self, suffix: str) -> Path:
        """Return a hidden temporary path beside the output: ``.<name>.<token><suffix>``."""
        path = self.final.with_name(f".{self.final.name}.{self.token}{suffix}")
        if suffix != LOCK:
            self._paths.append(path)
        return path

    def close(self) -> None:
        """Remove every temporary path still there and release the lock; safe to repeat."""
        for path in self._paths:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
        if self._fd is not None:
            self.path(LOCK).unlink(missing_ok=True)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> Staging:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
