"""every_frame backpressure: hold a stream's next frame until its consumer group catches up.

The group's outstanding work is what it has not been given yet (entries after its last-delivered
id) plus what it has been given and not acknowledged (its pending count). While that is
`max_lag` or more, ingest waits; the frame stream therefore never holds more than `max_lag`
unfinished frames, and with `frame_stream_max_len > max_lag` nothing is trimmed unread. Until the
group exists every entry counts as outstanding, so ingest waits for its consumer to start.

The frame stream's group is not always the last reader of the pixels: in `heron run`'s lossless
topology the overlay reads them after the tracker, from the last stage's metadata stream. A
`DownstreamLag` bounds that reader too: frames ingest added to the pipeline's frame streams minus
the frames the downstream group has finished on the metadata stream (entries added there minus
its outstanding ones). Each frame yields one metadata entry, so that difference is the number of
frames somewhere between ingest and the end of the downstream reader; kept below the ring's slot
count, no slot is reused before its frame was drawn.
"""

from __future__ import annotations

import logging
import threading
import time

import redis

from heron.core.backoff import Backoff
from heron.core.bus import Bus

log = logging.getLogger(__name__)

# Waits while the lag cannot be read (Redis away): the frame is held meanwhile.
LAG_RETRY_INITIAL_S = 0.1
LAG_RETRY_MAX_S = 2.0


class LagGate:
    def __init__(
        self,
        bus: Bus,
        key: str,
        group: str,
        max_lag: int,
        *,
        stop: threading.Event,
        poll_s: float = 0.01,
        downstream: DownstreamLag | None = None,
    ) -> None:
        self.bus = bus
        self.key = key
        self.group = group
        self.max_lag = max_lag
        self.poll_s = poll_s
        self.downstream = downstream
        self._stop = stop

    def wait(self) -> float:
        """Block until there is room for one more frame (or a stop); returns seconds waited."""
        started = time.monotonic()
        retry = Backoff(LAG_RETRY_INITIAL_S, LAG_RETRY_MAX_S)
        while not self._stop.is_set():
            try:
                if self.outstanding() < self.max_lag and self._downstream_has_room():
                    break
            except (redis.ConnectionError, redis.TimeoutError) as e:  # cannot tell: hold the frame
                log.warning("every_frame: cannot read the lag of %s: %s", self.key, e)
                self._stop.wait(retry.next())
                continue
            retry.reset()  # read: the next outage starts from the shortest wait
            self._stop.wait(self.poll_s)
        return time.monotonic() - started

    def outstanding(self) -> int:
        """Entries the group has not finished: undelivered plus pending."""
        return self.bus.outstanding(self.key, self.group, self.max_lag + 1)

    def _downstream_has_room(self) -> bool:
        return self.downstream is None or self.downstream.in_flight() < self.downstream.max_lag


class DownstreamLag:
    """Frames published on `frame_keys` that `group` has not yet finished on `meta_key`."""

    def __init__(
        self, bus: Bus, frame_keys: list[str], meta_key: str, group: str, max_lag: int
    ) -> None:
        self.bus = bus
        self.frame_keys = frame_keys
        self.meta_key = meta_key
        self.group = group
        self.max_lag = max_lag

    def in_flight(self) -> int:
        published = sum(self.bus.entries_added(key) for key in self.frame_keys)
        # Count the group's unfinished entries up to the stream's length (not just max_lag):
        # an undercount here would let ingest run ahead.
        total = self.bus.entries_added(self.meta_key)
        unfinished = self.bus.outstanding(self.meta_key, self.group, total + 1)
        return published - (total - unfinished)
