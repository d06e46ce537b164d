"""The private redis-server of `heron run` dies with the run, however the run dies."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
from heron.run.supervisor import die_with_parent

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="the parent-death signal is Linux-only"
)


def test_a_sigkilled_owner_takes_its_redis_server_with_it(tmp_path: Path) -> None:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    script = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from heron.run.redis_local import LocalRedis\n"
        f"r = LocalRedis(Path({str(tmp_path)!r}))\n"
        "r.start()\n"
        "print(r.proc.pid, r.port, flush=True)\n"
        "time.sleep(600)\n"
    )
    owner = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert owner.stdout is not None
        pid, port = (int(v) for v in owner.stdout.readline().split())
        redis = psutil.Process(pid)
        assert redis.ppid() == owner.pid
        owner.send_signal(signal.SIGKILL)
        owner.wait()
        # SIGKILL at once, not the SIGTERM shutdown a Redis may take its time over or refuse.
        redis.wait(timeout=5)
    finally:
        owner.kill()
        owner.wait()
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert all(c.laddr.port != port for c in psutil.net_connections("tcp") if c.laddr)


def test_a_child_whose_parent_died_before_the_hook_ran_exits_at_once() -> None:
    """The hook runs after fork: a parent gone by then sends no signal, so the child exits."""
    not_its_parent = 1  # as if the parent had died and init adopted the child
    child = subprocess.Popen(
        ["sleep", "30"],
        preexec_fn=die_with_parent(signal.SIGKILL, parent=not_its_parent),  # noqa: PLW1509
    )
    assert child.wait(timeout=5) == 128 + signal.SIGKILL


def test_the_hook_lets_a_child_of_a_living_parent_run() -> None:
    child = subprocess.Popen(["sleep", "0.1"], preexec_fn=die_with_parent())  # noqa: PLW1509
    assert child.wait(timeout=5) == 0


def test_a_fresh_start_forgets_an_earlier_runs_streams_a_restart_keeps_them(
    tmp_path: Path,
) -> None:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    import redis
    from heron.run.redis_local import LocalRedis

    first = LocalRedis(tmp_path)
    first.start(fresh=True)
    try:
        redis.Redis.from_url(first.url).xadd("s", {"n": "1"})
        first.restart()  # the same run: its data comes back
        assert redis.Redis.from_url(first.url).xlen("s") == 1
    finally:
        first.stop()
    again = LocalRedis(tmp_path)  # a new run in the same folder
    again.start(fresh=True)
    try:
        assert redis.Redis.from_url(again.url).xlen("s") == 0
    finally:
        again.stop()
