"""every_frame backpressure: hold a stream's next frame until its consumer group catches up.

The group's outstanding work is what it has not been given yet (entries after its last-delivered
id) plus what it has been given and not acknowledged (its pending count). While that is
`max_lag` or more, ingest waits; the frame stream therefore never holds more than `max_lag`
unfinished frames, and with `frame_stream_max_len > max_lag` nothing is trimmed unread. Until the
group exists every entry counts as outstanding, so ingest waits for its consumer to start.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import redis

log = logging.getLogger(__name__)


class LagGate:
    def __init__(
        self,
        client: redis.Redis,
        key: str,
        group: str,
        max_lag: int,
        *,
        stop: threading.Event,
        poll_s: float = 0.01,
    ) -> None:
        self.client = client
        self.key = key
        self.group = group
        self.max_lag = max_lag
        self.poll_s = poll_s
        self._stop = stop

    def wait(self) -> float:
        """Block until there is room for one more frame (or a stop); returns seconds waited."""
        started = time.monotonic()
        while not self._stop.is_set():
            try:
                if self.outstanding() < self.max_lag:
                    break
            except (redis.ConnectionError, redis.TimeoutError) as e:  # cannot tell: hold the frame
                log.warning("every_frame: cannot read the lag of %s: %s", self.key, e)
                self._stop.wait(0.5)
                continue
            self._stop.wait(self.poll_s)
        return time.monotonic() - started

    def outstanding(self) -> int:
        """Entries the group has not finished: undelivered plus pending."""
        info = self._group_info()
        if info is None:
            return int(self.client.xlen(self.key))
        pending = int(info["pending"])
        lag = info.get("lag")
        if lag is None:  # Redis cannot compute it after trims/deletes: count what is left
            last = info["last-delivered-id"]
            last = last.decode() if isinstance(last, bytes) else str(last)
            rest = self.client.xrange(self.key, min=f"({last}", count=self.max_lag + 1)
            lag = len(rest or [])
        return int(lag) + pending

    def _group_info(self) -> dict[str, Any] | None:
        try:
            groups = self.client.xinfo_groups(self.key)
        except redis.ResponseError:  # no such key yet
            return None
        for raw in groups:
            info = {_text(k): v for k, v in raw.items()}
            if _text(info["name"]) == self.group:
                return info
        return None


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
