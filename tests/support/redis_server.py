"""A real redis-server for tests: `heron run`'s own launcher, plus a restart on the same port."""

from __future__ import annotations

from heron.run.redis_local import LocalRedis, RedisUnavailableError, free_port

__all__ = ["RedisServer", "RedisUnavailableError", "free_port"]


class RedisServer(LocalRedis):
    """`restart()` keeps the port, so clients built from `url` reconnect to the new server."""

    def restart(self) -> None:
        self.stop()
        self.start()
