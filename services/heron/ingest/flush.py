"""A removed stream's pixels stay readable until downstream has its frames.

Its frame references are still on the frame stream when RemoveSource is answered; readers
attach to its shared-memory ring by name when they get to them. So the ring is unlinked only
once every consumer group on the stream has been given and has acknowledged every entry, or
after `timeout_s` (a reader that never catches up must not pin the memory for ever), on a
thread of its own so the reply goes out at once.
"""

from __future__ import annotations

import logging
import threading
import time

import redis

from heron.core.bus import Bus, BusError
from heron.ingest.store import PixelStore

log = logging.getLogger(__name__)

POLL_S = 0.05


class RingCloser:
    def __init__(self, bus: Bus, timeout_s: float, poll_s: float = POLL_S) -> None:
        self.bus = bus
        self.timeout_s = timeout_s
        self.poll_s = poll_s
        self._now = threading.Event()  # shutdown: close what is left without waiting
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    def close_when_read(self, key: str, store: PixelStore) -> None:
        thread = threading.Thread(
            target=self._wait_then_close, args=(key, store), name=f"ingest-flush-{key}", daemon=True
        )
        with self._lock:
            self._threads = [t for t in self._threads if t.is_alive()]
            self._threads.append(thread)
        thread.start()

    def close_all(self, timeout_s: float) -> None:
        """Shutdown: stop waiting and close every store still open."""
        self._now.set()
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(timeout_s)

    def _wait_then_close(self, key: str, store: PixelStore) -> None:
        deadline = time.monotonic() + self.timeout_s
        while not self._now.is_set() and not self._read(key):
            if time.monotonic() >= deadline:
                log.warning(
                    "%s: consumers did not finish its frames within %.1f s; releasing its pixels",
                    key,
                    self.timeout_s,
                )
                break
            self._now.wait(self.poll_s)
        store.close()

    def _read(self, key: str) -> bool:
        """Some group reads the stream and every group has finished it. With no group yet
        (its reader has not found the stream) the frames are still to be read: wait."""
        try:
            groups = self.bus.groups_caught_up(key)
        except (BusError, redis.RedisError) as e:
            log.warning("%s: cannot tell whether its frames were read: %s", key, e)
            return False
        return bool(groups) and all(groups.values())
