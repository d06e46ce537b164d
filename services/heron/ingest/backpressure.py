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

Only frames in this ingest's own rings count. A restarted ingest starts with its killed
predecessor's frames still on their way: metadata entries whose pixels died with the old rings,
which the overlay leaves pending until their copies come (heron.ingest.resume, up to its
redelivery limit), and frames not yet through inference and the tracker. Counted, as many of
them as the limit would let the new ingest publish none of those copies, and the pipeline would
stand still until the overlay gave up on them. So `DownstreamLag` counts from where it started:
frames published since, and metadata entries added since that name one of this ingest's rings
(each read once, as it comes); the entries it found on the stream, and later ones naming a ring
it did not write, are left out. Subtracting a fixed count instead would not do: counted short,
the new ring could be lapped.
"""

from __future__ import annotations

import logging
import threading
import time

import redis

from heron.core.backoff import Backoff
from heron.core.bus import Bus
from heron.core.bus.ids import parse_id
from heron.core.streams import StreamName
from heron.v1.detection_pb2 import FrameMetadata
from heron.v1.frame_pb2 import FrameRef

log = logging.getLogger(__name__)

# Waits while the lag cannot be read (Redis away): the frame is held meanwhile.
LAG_RETRY_INITIAL_S = 0.1
LAG_RETRY_MAX_S = 2.0
# Metadata entries a restarted ingest's DownstreamLag reads per request while it catches up.
FOLLOW_COUNT = 1000
# Unfinished metadata entries listed while a predecessor's are among them: far more than a
# pipeline holds (the ring's slots bound this ingest's, the predecessors' rings bound theirs).
LOOK_UP_TO = 10_000


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
    """Frames this ingest published on `frame_keys` that `group` has not yet finished on the
    metadata stream `meta`. Made before the ingest publishes its first frame: what the streams
    hold then is a predecessor's. The ingest names every ring it writes (`own_ring`)."""

    def __init__(
        self, bus: Bus, frame_keys: list[str], meta: StreamName, group: str, max_lag: int
    ) -> None:
        self.bus = bus
        self.meta_key = meta.key
        self.group = group
        self.max_lag = max_lag
        self.rings: set[str] = set()  # the segments this ingest wrote
        self.frame_keys: list[str] = []
        self._published_before: dict[str, int] = {}
        for key in frame_keys:
            self.add_frames(key)
        self._tail = bus.tail(meta, FrameMetadata)
        self._start = self._read_to = self._tail.window().newest  # what was there before
        # A predecessor left frames: entries after the start may name its rings too.
        self._predecessor = self._start.number > 0 or any(self._published_before.values())
        self._theirs = 0  # entries after the start that name a predecessor's ring
        # The predecessor's entries `group` may not have finished: those on the stream at the
        # start and those after it that name its rings. Once all are finished, every entry the
        # group has not finished is one of this ingest's, and counting them is cheap again.
        self._stale: set[str] = set()
        if self._start.number > 0:
            ids = bus.unfinished_ids(self.meta_key, group, "0-0", self._start.number + 1)
            self._stale = {i for i in ids if parse_id(i) <= self._start.key}

    def add_frames(self, key: str) -> None:
        """Count the frames published on `key` from now on (a source added at run time)."""
        if key not in self.frame_keys:
            self._published_before[key] = self.bus.entries_added(key)
            self.frame_keys.append(key)

    def own_ring(self, segment: str) -> None:
        """A ring this ingest created: the frames in it count. Called before its first frame
        is published."""
        self.rings.add(segment)

    def in_flight(self) -> int:
        published = sum(self.bus.entries_added(k) - n for k, n in self._published_before.items())
        # This ingest's frames out of the last stage (finished by `group` or not). Read before
        # what the group has not finished: an entry added in between then counts as not out
        # yet and as unfinished (one frame too many for a moment), never too few.
        if self._predecessor:
            out = self._follow() - self._theirs
        else:  # every metadata entry names a frame of this ingest
            out = self.bus.entries_added(self.meta_key)
        return published - out + self._unfinished()

    def _unfinished(self) -> int:
        """This ingest's metadata entries `group` has not finished: all of them up to the
        stream's length (not just max_lag: an undercount here would let ingest run ahead)."""
        if self._stale:
            ids = self.bus.unfinished_ids(self.meta_key, self.group, "0-0", LOOK_UP_TO)
            self._stale.intersection_update(ids)  # a finished entry stays finished
            return len(ids) - len(self._stale)
        total = self.bus.entries_added(self.meta_key)
        return self.bus.outstanding(self.meta_key, self.group, total + 1)

    def _follow(self) -> int:
        """Read the metadata entries added since the last call, noting those that name a
        predecessor's ring; returns how many were added since the start. An entry the stream's
        retention trimmed before it was read (every group finished it between two calls)
        counts as this ingest's."""
        while True:
            read = self._tail.read(self._read_to, FOLLOW_COUNT)
            for entry in read.entries:
                if entry.message is not None and self._theirs_ring(entry.message.frame):
                    self._theirs += 1
                    self._stale.add(entry.cursor.id)
            self._read_to = read.end
            if len(read.entries) < FOLLOW_COUNT:
                return self._read_to.number - self._start.number

    def _theirs_ring(self, ref: FrameRef) -> bool:
        """A frame in a ring this ingest did not write. One without a ring (inline JPEG)
        counts as this ingest's: there is no ring to lap."""
        return ref.HasField("shm") and ref.shm.segment not in self.rings
