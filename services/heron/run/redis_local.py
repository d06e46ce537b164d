"""A private redis-server for one `heron run`, on a free loopback port, kept alive by the run.

It keeps an append-only file in the run folder: Redis writes each command there before it
replies, so a redis-server killed mid-run and started again by `heron run` (`restart()`) comes
back with every stream entry, consumer group and pending message it had acknowledged. Nothing
is fsynced per write (a power cut may lose the last second; a killed process loses nothing).
Like the services, it gets a parent-death signal (SIGKILL, which nothing delays): a `heron run`
killed with SIGKILL takes its Redis with it.

A run starts it empty (`start(fresh=True)`), even in a run folder an earlier run used: what
the bus holds is the run's state (a restarted ingest resumes a file from it,
heron.ingest.resume), so a new run must not find a finished one's streams there.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import redis

from heron.run.supervisor import die_with_parent


class RedisUnavailableError(RuntimeError):
    """No Redis was configured, or the private one could not be started (again)."""


def free_port() -> int:
    """A TCP port nothing listens on now (another process may take it before we do)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LocalRedis:
    """`redis-server --port P --bind 127.0.0.1 --appendonly yes` in `workdir`."""

    def __init__(self, workdir: Path, binary: str | None = None, *, persist: bool = True) -> None:
        found = binary or shutil.which("redis-server")
        if found is None:
            raise RedisUnavailableError(
                "no Redis is configured (--redis-url or REDIS_URL) and redis-server is not "
                "installed: install it (Debian: apt-get install redis-server; `make setup` does "
                "it as root) or point --redis-url at a running Redis"
            )
        self.binary = found
        self.workdir = workdir
        self.persist = persist  # False: a restart starts empty (tests of a Redis that forgot)
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.restarts = 0

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout_s: float = 10.0, *, fresh: bool = False) -> None:
        """`fresh`: forget the data an earlier run left in the folder (a new run's start)."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        if fresh:
            shutil.rmtree(self.workdir / "appendonlydir", ignore_errors=True)  # Redis 7
            (self.workdir / "appendonly.aof").unlink(missing_ok=True)  # before Redis 7
        with (self.workdir / "redis.log").open("ab") as log:
            self.proc = subprocess.Popen(
                [
                    self.binary,
                    "--port", str(self.port),
                    "--bind", "127.0.0.1",
                    "--save", "",
                    "--appendonly", "yes" if self.persist else "no",
                    "--appendfsync", "everysec",
                    "--dir", str(self.workdir),
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                # As in the supervisor (safe beside threads), but SIGKILL: nothing can delay or
                # refuse it, unlike the shutdown SIGTERM starts, and an orphaned Redis has nobody
                # to serve. Every command it acknowledged is in its append-only file already.
                preexec_fn=die_with_parent(signal.SIGKILL),  # noqa: PLW1509
            )  # fmt: skip
        self._wait_ready(timeout_s)

    def restart(self, timeout_s: float = 30.0) -> None:
        """Start it again on the same port and folder; it reloads its append-only file."""
        self.stop()
        self.restarts += 1
        self.start(timeout_s)

    def _wait_ready(self, timeout_s: float) -> None:
        """Until it answers PING; loading a large append-only file answers LOADING first."""
        assert self.proc is not None
        client = redis.Redis.from_url(self.url)
        deadline = time.monotonic() + timeout_s
        try:
            while True:
                try:
                    client.ping()
                    return
                except redis.ConnectionError:  # BusyLoadingError is one too
                    if self.proc.poll() is not None or time.monotonic() > deadline:
                        self.stop()
                        raise RedisUnavailableError(
                            f"redis-server did not start on 127.0.0.1:{self.port}; see "
                            f"{self.workdir / 'redis.log'}"
                        ) from None
                    time.sleep(0.05)
        finally:
            client.close()

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
