"""The supervisor with real child processes: restart, give-up, reverse-order stop, no orphans."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest
from heron.core.runtime import EXIT_BAD_SETTINGS, EXIT_FATAL
from heron.run.redis_local import free_port
from heron.run.supervisor import (
    ChildSpec,
    ChildState,
    GaveUpError,
    RestartPolicy,
    Supervisor,
    answers_ready,
)

from tests.run import children

FAST = RestartPolicy(initial_backoff_s=0.05, max_backoff_s=0.2, stop_timeout_s=2.0)


@pytest.fixture
def supervisors() -> Iterator[list[Supervisor]]:
    """Supervisors a test made; stopped afterwards even when the test fails."""
    made: list[Supervisor] = []
    yield made
    for s in made:
        s.stop()


def make(
    made: list[Supervisor],
    specs: list[ChildSpec],
    policy: RestartPolicy = FAST,
    said: list[str] | None = None,
) -> Supervisor:
    s = Supervisor(specs, policy, notify=(said if said is not None else []).append)
    made.append(s)
    return s


def poll_until(s: Supervisor, done: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            states = {c.spec.name: c.state for c in s.children}
            raise AssertionError(f"timed out; states: {states}")
        s.poll()
        time.sleep(0.02)


def listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def alive(pid: int) -> bool:
    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False


def test_a_crashed_child_is_restarted_and_counted(
    tmp_path: Path, supervisors: list[Supervisor]
) -> None:
    s = make(supervisors, [ChildSpec("flaky", children.crash_once(tmp_path / "marker"))])
    s.start()
    first = s.child("flaky").pid
    poll_until(s, lambda: s.restarts["flaky"] == 1 and s.child("flaky").state is ChildState.RUNNING)
    child = s.child("flaky")
    assert child.pid != first and child.pid is not None and alive(child.pid)
    assert child.last_exit == 1
    assert len(child.pids) == 2


def test_gives_up_after_repeated_fast_crashes(
    tmp_path: Path, supervisors: list[Supervisor]
) -> None:
    policy = FAST.model_copy(update={"max_fast_crashes": 3})
    s = make(supervisors, [ChildSpec("broken", children.exits_with(7))], policy)
    s.start()
    with pytest.raises(GaveUpError, match="crashed 3 times in a row") as caught:
        poll_until(s, lambda: False)
    assert caught.value.name == "broken"
    assert s.restarts["broken"] == 2
    assert s.child("broken").state is ChildState.FAILED


@pytest.mark.parametrize(
    ("code", "message"),
    [
        (EXIT_BAD_SETTINGS, "settings were refused"),
        (EXIT_FATAL, "a restart cannot mend"),
    ],
)
def test_hopeless_exits_are_not_retried(
    supervisors: list[Supervisor], code: int, message: str
) -> None:
    s = make(supervisors, [ChildSpec("misconfigured", children.exits_with(code))])
    s.start()
    with pytest.raises(GaveUpError, match=message):
        poll_until(s, lambda: False)
    assert s.restarts["misconfigured"] == 0


def test_the_exit_code_of_a_stop_is_kept_apart_from_earlier_exits(
    tmp_path: Path, supervisors: list[Supervisor]
) -> None:
    s = make(
        supervisors,
        [ChildSpec("done", children.exits_with(0)), ChildSpec("sleeper", children.sleeper())],
    )
    s.start()
    poll_until(s, lambda: s.child("done").state is ChildState.FINISHED)
    s.stop()
    assert s.child("done").stop_exit is None  # it had ended before the stop
    assert s.child("sleeper").stop_exit == -signal.SIGTERM


def test_a_clean_exit_is_finished_not_restarted(supervisors: list[Supervisor]) -> None:
    s = make(supervisors, [ChildSpec("done", children.exits_with(0))])
    s.start()
    poll_until(s, lambda: s.child("done").state is ChildState.FINISHED)
    for _ in range(10):
        s.poll()
        time.sleep(0.02)
    assert s.restarts["done"] == 0


def test_backoff_doubles_up_to_the_limit(tmp_path: Path) -> None:
    now = [0.0]
    policy = RestartPolicy(initial_backoff_s=1, max_backoff_s=3, max_fast_crashes=10)
    s = Supervisor([ChildSpec("c", children.exits_with(1))], policy, clock=lambda: now[0])
    waits = []
    try:
        s.start()
        for _ in range(4):
            s.child("c").proc.wait()  # type: ignore[union-attr]
            s.poll()
            waits.append(s.child("c").next_start_at - now[0])
            now[0] = s.child("c").next_start_at
            s.poll()  # due: starts it again
    finally:
        s.stop()
    assert waits == [1, 2, 3, 3]


def test_stop_goes_in_reverse_order(tmp_path: Path, supervisors: list[Supervisor]) -> None:
    journal = tmp_path / "journal"
    names = ["ingest", "inference", "tracker", "overlay"]
    specs = [ChildSpec(n, children.records_sigterm(n, journal)) for n in names]
    s = make(supervisors, specs)
    s.start()
    time.sleep(0.5)  # let them install their handlers
    s.stop()
    assert journal.read_text().split() == list(reversed(names))
    assert all(c.state is ChildState.STOPPED and c.last_exit == 0 for c in s.children)


def test_stop_kills_what_ignores_sigterm_and_its_children(
    tmp_path: Path, supervisors: list[Supervisor]
) -> None:
    pid_file = tmp_path / "pids"
    policy = FAST.model_copy(update={"stop_timeout_s": 0.5})
    s = make(supervisors, [ChildSpec("stubborn", children.ignores_sigterm(pid_file))], policy)
    s.start()
    deadline = time.monotonic() + 10
    while not (pid_file.exists() and pid_file.read_text()):
        assert time.monotonic() < deadline, "child never wrote its pids"
        time.sleep(0.02)
    child, grandchild = (int(p) for p in pid_file.read_text().split())
    assert alive(child) and alive(grandchild)
    s.stop()
    psutil.wait_procs([p for p in _procs([child, grandchild])], timeout=5)
    assert not alive(child) and not alive(grandchild)
    assert s.child("stubborn").last_exit == -signal.SIGKILL


def _procs(pids: list[int]) -> list[psutil.Process]:
    found = []
    for pid in pids:
        with contextlib.suppress(psutil.NoSuchProcess):
            found.append(psutil.Process(pid))
    return found


def test_children_die_with_a_killed_supervisor(tmp_path: Path) -> None:
    """SIGKILL gives the supervisor no chance to clean up: the parent-death signal does it."""
    if not sys.platform.startswith("linux"):
        pytest.skip("the parent-death signal is Linux-only")
    script = (
        "import sys, time\n"
        "from heron.run.supervisor import ChildSpec, Supervisor\n"
        f"s = Supervisor([ChildSpec('a', {children.sleeper()!r}), "
        f"ChildSpec('b', {children.sleeper()!r})])\n"
        "s.start()\n"
        "print(' '.join(str(c.pid) for c in s.children), flush=True)\n"
        "time.sleep(600)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        pids = [int(p) for p in proc.stdout.readline().split()]
        assert len(pids) == 2 and all(alive(p) for p in pids)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        _, still = psutil.wait_procs(_procs(pids), timeout=5)
        assert not still, f"orphans left: {still}"
    finally:
        proc.kill()
        proc.wait()
    assert not any(alive(p) for p in pids)


def test_child_environment_and_log_file(tmp_path: Path, supervisors: list[Supervisor]) -> None:
    log = tmp_path / "logs" / "c.log"
    spec = ChildSpec(
        "c",
        children.python("import os; print('value=' + os.environ['HERON_TEST_VALUE'])"),
        env={"HERON_TEST_VALUE": "42"},
        log_file=log,
    )
    s = make(supervisors, [spec])
    s.start()
    poll_until(s, lambda: s.child("c").state is ChildState.FINISHED)
    s.stop()
    assert log.read_text().strip() == "value=42"
    assert os.environ.get("HERON_TEST_VALUE") is None


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"initial_backoff_s": 5, "max_backoff_s": 1}, "must be >= initial_backoff_s"),
        ({"max_fast_crashes": 0}, "greater than or equal to 1"),
        ({"stop_timeout_s": -1}, "greater than 0"),
        ({"restart_forever": True}, "Extra inputs are not permitted"),
    ],
)
def test_policy_rejects_bad_values(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RestartPolicy.model_validate(fields)


def test_duplicate_names_are_refused() -> None:
    with pytest.raises(ValueError, match="unique"):
        Supervisor([ChildSpec("a", children.sleeper()), ChildSpec("a", children.sleeper())])


# -- why a child died, and giving up on one that is never ready --------------------------------

# Crashes here are "slow" (after fast_crash_s), so only the readiness rule can end them.
SLOW = FAST.model_copy(update={"fast_crash_s": 0.05, "ready_probe_s": 0.05})


def test_the_restart_message_carries_the_childs_last_error(
    tmp_path: Path, supervisors: list[Supervisor]
) -> None:
    log = tmp_path / "inference.log"
    lines = [
        '{"level": "INFO", "message": "starting"}',
        '{"level": "ERROR", "message": "service failed", "exc": "Traceback (most recent call '
        'last):\\n  File \\"x.py\\", line 1\\nheron.inference.errors.BackendUnavailableError: '
        'Triton at 127.0.0.1:8001: connection refused"}',
        '{"level": "INFO", "message": "stopped"}',
    ]
    said: list[str] = []
    spec = ChildSpec("inference", children.logs_then_exits(lines), log_file=log)
    s = make(supervisors, [spec], said=said)
    s.start()
    poll_until(s, lambda: s.restarts["inference"] >= 1)
    assert said[0].startswith(
        "inference died (exit code 1: service failed: BackendUnavailableError: Triton at "
        "127.0.0.1:8001: connection refused); restarting in 0.05 s"
    ), said


def test_a_reason_is_only_this_starts_own(tmp_path: Path, supervisors: list[Supervisor]) -> None:
    """An error an earlier start logged is not the reason a later one died."""
    log = tmp_path / "c.log"
    log.write_text('{"level": "ERROR", "message": "an old failure"}\n')
    said: list[str] = []
    s = make(supervisors, [ChildSpec("c", children.exits_with(1), log_file=log)], said=said)
    s.start()
    poll_until(s, lambda: s.restarts["c"] >= 1)
    assert said[0].startswith("c died (exit code 1); restarting"), said
    assert s.child("c").last_reason is None


def test_gives_up_on_a_child_that_keeps_crashing_before_it_is_ready(
    tmp_path: Path, supervisors: list[Supervisor]
) -> None:
    """Each start outlives the fast-crash window (as one waiting 60 s for Triton does), but
    none answers ready: the run gives up after max_unready_crashes, naming the reason."""
    port = free_port()
    argv = children.serves_readiness(port, 503, 1, 0.2, error="cannot reach Triton")
    spec = ChildSpec(
        "inference",
        argv,
        log_file=tmp_path / "inference.log",
        ready_url=f"http://127.0.0.1:{port}/readyz",
    )
    said: list[str] = []
    s = make(supervisors, [spec], SLOW.model_copy(update={"max_unready_crashes": 3}), said)
    s.start()
    with pytest.raises(GaveUpError) as caught:
        poll_until(s, lambda: False)
    assert caught.value.name == "inference"
    assert caught.value.reason.startswith("it crashed 3 times in a row in ")
    assert caught.value.reason.endswith(
        "without ever becoming ready (the last time: exit code 1: cannot reach Triton)"
    )
    assert s.restarts["inference"] == 2
    assert s.child("inference").state is ChildState.FAILED
    assert [m.split(";")[0] for m in said] == [
        "inference died (exit code 1: cannot reach Triton)"
    ] * 2
    assert said[0].endswith("(1 of 3 crashes in a row before it became ready)"), said
    assert "restarting in 0.1 s" in said[1]  # the backoff doubles with the streak


def test_a_child_that_was_ready_starts_a_new_count(
    tmp_path: Path, supervisors: list[Supervisor]
) -> None:
    """Crashes after readiness are not a dependency that stays down: restarted for ever."""
    port = free_port()
    argv = children.serves_readiness(port, 200, 1, 0.4)
    spec = ChildSpec("tracker", argv, ready_url=f"http://127.0.0.1:{port}/readyz")
    s = make(supervisors, [spec], SLOW.model_copy(update={"max_unready_crashes": 1}))
    s.start()
    poll_until(s, lambda: s.restarts["tracker"] >= 3)
    assert s.child("tracker").unready_crashes == 0


@pytest.mark.parametrize(
    ("status", "checks", "ready"),
    [(200, 2, True), (503, 2, False), (200, 0, False)],
    ids=["ready", "not ready", "no check registered yet"],
)
def test_ready_means_200_with_checks(
    supervisors: list[Supervisor], status: int, checks: int, ready: bool
) -> None:
    port = free_port()
    s = make(supervisors, [ChildSpec("c", children.serves_readiness(port, status, checks, 30))])
    s.start()
    deadline = time.monotonic() + 10
    while not listening(port):
        assert time.monotonic() < deadline, "the child never listened"
        time.sleep(0.02)
    assert answers_ready(f"http://127.0.0.1:{port}/readyz") is ready
    assert answers_ready(f"http://127.0.0.1:{free_port()}/readyz") is False  # nobody there


def test_without_a_readiness_url_slow_crashes_are_restarted_for_ever(
    supervisors: list[Supervisor],
) -> None:
    s = make(
        supervisors,
        [ChildSpec("c", children.python("import sys, time; time.sleep(0.1); sys.exit(1)"))],
        SLOW.model_copy(update={"max_unready_crashes": 1}),
    )
    s.start()
    poll_until(s, lambda: s.restarts["c"] >= 3)
    assert s.child("c").state is not ChildState.FAILED
