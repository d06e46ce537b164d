"""The stop request and its watchdog, driven directly (real signals: see test_service.py)."""

from __future__ import annotations

import signal
import threading

from heron.core.runtime import EXIT_GRACE_EXPIRED, Shutdown


class Exits:
    """Stands in for os._exit so the test process survives; records the code."""

    def __init__(self) -> None:
        self.codes: list[int] = []
        self.called = threading.Event()

    def __call__(self, code: int) -> None:
        self.codes.append(code)
        self.called.set()


def test_first_request_stops_and_later_ones_do_not_rearm() -> None:
    exits = Exits()
    shutdown = Shutdown(grace_s=60, exit=exits)
    assert shutdown.request("end of file source")
    assert shutdown.requested.is_set() and shutdown.reason == "end of file source"
    assert not shutdown.request("again")
    assert shutdown.reason == "end of file source"
    shutdown.finished()
    assert exits.codes == []


def test_grace_expiry_forces_exit_124() -> None:
    exits = Exits()
    shutdown = Shutdown(grace_s=0.05, exit=exits)
    shutdown.request("test")
    assert exits.called.wait(5)
    assert exits.codes == [EXIT_GRACE_EXPIRED]


def test_finished_disarms_the_watchdog() -> None:
    exits = Exits()
    shutdown = Shutdown(grace_s=0.05, exit=exits)
    shutdown.request("test")
    shutdown.finished()
    assert not exits.called.wait(0.2)


def test_second_signal_exits_with_128_plus_signal_number() -> None:
    exits = Exits()
    shutdown = Shutdown(grace_s=60, exit=exits)
    shutdown._on_signal(signal.SIGINT, None)
    assert shutdown.reason == "SIGINT received" and exits.codes == []
    shutdown._on_signal(signal.SIGTERM, None)
    assert exits.codes == [128 + signal.SIGTERM]
    shutdown.finished()


def test_install_and_uninstall_restore_the_previous_handlers() -> None:
    before = signal.getsignal(signal.SIGTERM)
    shutdown = Shutdown(grace_s=1, exit=Exits())
    shutdown.install()
    assert signal.getsignal(signal.SIGTERM) == shutdown._on_signal
    shutdown.uninstall()
    assert signal.getsignal(signal.SIGTERM) == before
