"""Stops from outside: SIGTERM and SIGHUP handled like Ctrl-C.

``kill``, ``timeout``, Slurm, Kubernetes and systemd stop a process with
SIGTERM, a closed terminal sends SIGHUP. Python turns only SIGINT (Ctrl-C)
into :class:`KeyboardInterrupt`, so without this a SIGTERM ends the process
at once and leaves its temporary files. :class:`StopSignals` raises
:class:`Stopped`, a :class:`KeyboardInterrupt`, on either, so every cleanup
that Ctrl-C runs (``finally`` blocks, context managers) runs for them too;
later signals are ignored while that cleanup runs.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType

#: The signals handled like Ctrl-C (SIGHUP does not exist on Windows).
STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP")
                     if hasattr(signal, name))


class Stopped(KeyboardInterrupt):
    """The process received a stop signal (SIGTERM, SIGHUP).

    Args:
        signum: The signal's number.

    """

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class StopSignals:
    """While active, SIGTERM and SIGHUP raise :class:`Stopped` in the main thread.

    The signal received (SIGINT for Ctrl-C) is kept in :attr:`received`, also
    when a library catches the interrupt and re-raises something else
    (Lightning ends ``fit`` with ``sys.exit(1)``). Outside the main thread
    (where Python cannot install handlers) it does nothing.
    """

    def __init__(self) -> None:
        self.received: signal.Signals | None = None
        self._previous: dict[int, object] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.received is not None:
            return  # cleaning up after the first stop: let it finish
        self.received = signal.Signals(signum)
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        raise Stopped(signum)

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, *STOP_SIGNALS):
                current = signal.getsignal(signum)
                if signum == signal.SIGINT and current is not signal.default_int_handler:
                    continue  # Ctrl-C ignored or handled by the caller: leave it so
                self._previous[signum] = current
                signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def describe(self) -> str:
        """Name the stop for a message: ``SIGTERM``, ``SIGHUP`` or ``Ctrl-C (SIGINT)``."""
        if self.received is None or self.received == signal.SIGINT:
            return "Ctrl-C (SIGINT)"
        return self.received.name

    @property
    def exit_code(self) -> int:
        """The shell's convention for a process ended by a signal: 128 + its number."""
        return 128 + int(self.received or signal.SIGINT)
