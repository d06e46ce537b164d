"""Graceful stop on SIGTERM/SIGINT, bounded by a grace period.

The first signal (or `request()`) asks the service to stop: the main loop ends, in-flight work
is finished and acknowledged, the process exits 0. A second signal, or the grace period running
out, forces the exit at once with a non-zero code and a log line saying why, so a pod never
hangs until Kubernetes' SIGKILL without telling anyone.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable
from types import FrameType

from heron.core.runtime.logs import flush_logs

log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_FAILED = 1  # the service raised
EXIT_BAD_SETTINGS = 2  # like a command-line usage error
EXIT_FATAL = 3  # a FatalError: a condition that starting the service again cannot mend
EXIT_GRACE_EXPIRED = 124  # as timeout(1): in-flight work did not finish within the grace period
# A second signal exits with 128 + signal number (143 for SIGTERM, 130 for SIGINT), the code a
# shell reports for a process killed by that signal.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class FatalError(Exception):
    """A failure that a restart cannot mend (a sink's disk is read-only, an output path is a
    folder): the service exits with EXIT_FATAL and the message alone, and a supervisor that
    sees that code stops the whole run instead of restarting the service again and again."""


class Shutdown:
    """The stop request of one process: an Event the main loop watches, and its watchdog."""

    def __init__(self, grace_s: float, exit: Callable[[int], object] = os._exit) -> None:
        self.grace_s = grace_s
        self.requested = threading.Event()
        self.reason = ""
        self._exit = exit
        self._timer: threading.Timer | None = None
        self._previous: dict[int, object] = {}
        # Re-entrant: the signal handler runs on the main thread, possibly inside request().
        self._lock = threading.RLock()

    def install(self) -> None:
        """Take over SIGTERM and SIGINT (main thread only, as Python requires)."""
        for sig in STOP_SIGNALS:
            self._previous[sig] = signal.signal(sig, self._on_signal)

    def uninstall(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]
        self._previous.clear()

    def request(self, reason: str) -> bool:
        """Ask the service to stop and start the grace watchdog; False if already asked."""
        with self._lock:
            if self.requested.is_set():
                return False
            self.reason = reason
            self.requested.set()
            self._timer = threading.Timer(self.grace_s, self._grace_expired)
            self._timer.daemon = True
            self._timer.name = "heron-shutdown-watchdog"
            self._timer.start()
        log.info(
            "stopping: %s; finishing in-flight work (grace %g s)",
            reason,
            self.grace_s,
            extra={"reason": reason, "grace_s": self.grace_s},
        )
        return True

    def finished(self) -> None:
        """The service stopped cleanly: disarm the watchdog."""
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if self.request(f"{name} received"):
            return
        log.error(
            "second %s: exiting now without finishing in-flight work",
            name,
            extra={"signal": name, "exit_code": 128 + signum},
        )
        flush_logs()
        self._exit(128 + signum)

    def _grace_expired(self) -> None:
        log.error(
            "in-flight work did not finish within the %g s grace period; exiting now",
            self.grace_s,
            extra={"grace_s": self.grace_s, "exit_code": EXIT_GRACE_EXPIRED},
        )
        flush_logs()
        self._exit(EXIT_GRACE_EXPIRED)
