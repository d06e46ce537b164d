"""A real redis-server for tests: `heron run`'s own launcher, without persistence, so that
`restart()` (same port) gives a Redis that forgot everything, as an unconfigured one would."""

from __future__ import annotations

from pathlib import Path

from heron.run.redis_local import LocalRedis, RedisUnavailableError, free_port

__all__ = ["RedisServer", "RedisUnavailableError", "free_port"]


class RedisServer(LocalRedis):
    def __init__(self, workdir: Path, binary: str | None = None) -> None:
        super().__init__(workdir, binary, persist=False)
