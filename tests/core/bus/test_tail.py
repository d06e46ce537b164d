"""Reading a stream from a position without a consumer group: numbered entries, the exact
count of what a trim took from under a position, waiting for the next entry — on Redis and
in memory alike."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
import redis
from heron.core import streams
from heron.core.bus import (
    Bus,
    BusSettings,
    Cursor,
    MemoryBus,
    MemoryStreams,
    RedisBus,
    Tail,
    Window,
)
from heron.core.bus.ids import id_before
from heron.core.bus.tail import START, TailEntry
from heron.v1.detection_pb2 import FrameMetadata
from heron.v1.frame_pb2 import FrameRef
from prometheus_client import CollectorRegistry


def meta(number: int) -> FrameMetadata:
    return FrameMetadata(frame=FrameRef(stream_id="cam-0", frame_number=number))


@dataclass
class Setup:
    bus: Bus
    stream: streams.StreamName
    trim: Callable[[int], object]  # keep only the newest N entries

    def tail(self) -> Tail[FrameMetadata]:
        return self.bus.tail(self.stream, FrameMetadata)

    def publish(self, numbers: range) -> list[str]:
        return self.bus.publisher(self.stream, FrameMetadata).publish_many(
            [meta(n) for n in numbers]
        )


@pytest.fixture(params=["redis", "memory"])
def setup(request: pytest.FixtureRequest, name: str, settings: BusSettings) -> Iterator[Setup]:
    stream = streams.metadata("tracker", name)
    if request.param == "memory":
        shared = MemoryStreams()

        def trim_memory(keep: int) -> None:
            with shared.changed:
                state = shared.stream(stream.key)
                state.drop_front(max(0, len(state.ids) - keep))

        yield Setup(MemoryBus(shared, settings, registry=CollectorRegistry()), stream, trim_memory)
        return
    url = request.getfixturevalue("redis_url")
    client = redis.Redis.from_url(url)
    with RedisBus.from_url(url, settings, registry=CollectorRegistry()) as bus:
        yield Setup(
            bus, stream, lambda keep: client.xtrim(stream.key, maxlen=keep, approximate=False)
        )
    client.close()


def numbers(entries: list[TailEntry[FrameMetadata]]) -> list[int]:
    out = []
    for entry in entries:
        assert entry.message is not None, entry.problem
        out.append(entry.message.frame.frame_number)
    return out


def test_entries_are_numbered_and_reads_chain(setup: Setup) -> None:
    ids = setup.publish(range(10))
    tail = setup.tail()
    first = tail.read(START, count=4)
    assert [e.cursor for e in first.entries] == [Cursor(i, n) for n, i in enumerate(ids[:4], 1)]
    assert numbers(first.entries) == [0, 1, 2, 3] and first.missed == 0
    assert first.newest == Cursor(ids[-1], 10)
    rest = tail.read(first.entries[-1].cursor, count=100)
    assert numbers(rest.entries) == list(range(4, 10))
    assert rest.entries[-1].cursor == Cursor(ids[-1], 10)
    assert tail.read(rest.entries[-1].cursor, count=100).entries == []


def test_a_trim_past_the_position_is_counted_exactly(setup: Setup) -> None:
    ids = setup.publish(range(10))
    tail = setup.tail()
    at = tail.read(START, count=3).entries[-1].cursor  # entry 3 (frame 2)
    setup.trim(4)  # entries 7..10 stay: 4, 5 and 6 are gone
    read = tail.read(at, count=100)
    assert read.missed == 3
    assert read.start == Cursor(id_before(ids[6]), 6)
    assert [e.cursor.number for e in read.entries] == [7, 8, 9, 10]
    assert numbers(read.entries) == [6, 7, 8, 9]
    assert tail.window() == Window(added=10, length=4, first_id=ids[6], last_id=ids[-1])
    assert tail.window().oldest == Cursor(id_before(ids[6]), 6)


def test_an_emptied_stream_counts_everything_after_the_position(setup: Setup) -> None:
    ids = setup.publish(range(5))
    setup.trim(0)
    read = setup.tail().read(Cursor(ids[1], 2), count=10)
    assert (read.missed, read.entries, read.start) == (3, [], Cursor(ids[-1], 5))


def test_a_position_past_the_newest_waits_for_newer_entries(setup: Setup) -> None:
    setup.publish(range(2))
    future = Cursor(f"{int(time.time() * 1000) + 60_000}-0", 99)
    read = setup.tail().read(future, count=10)
    assert (read.missed, read.entries) == (0, [])
    assert read.start == Cursor(future.id, 2)  # numbered as this stream counts


def test_a_missing_stream_is_empty_and_a_read_waits_for_the_first_entry(setup: Setup) -> None:
    tail = setup.tail()
    assert tail.window() == Window(0, 0, None, "0-0")
    timer = threading.Timer(0.2, lambda: setup.publish(range(1)))
    timer.start()
    started = time.monotonic()
    read = tail.read(tail.window().newest, count=10, block_ms=3000)
    timer.join()
    assert numbers(read.entries) == [0] and read.entries[0].cursor.number == 1
    assert time.monotonic() - started < 2.5  # woken by the entry, not by the timeout


def test_an_idle_read_returns_after_its_wait(setup: Setup) -> None:
    setup.publish(range(1))
    tail = setup.tail()
    started = time.monotonic()
    read = tail.read(tail.window().newest, count=10, block_ms=200)
    assert read.entries == [] and 0.15 < time.monotonic() - started < 2.0


def test_an_undecodable_entry_keeps_its_place(redis_url: str, name: str) -> None:
    stream = streams.metadata("tracker", name)
    client = redis.Redis.from_url(redis_url)
    client.xadd(stream.key, {"pb": b"\xff\xff not protobuf"})
    with RedisBus.from_url(redis_url, registry=CollectorRegistry()) as bus:
        bus.publisher(stream, FrameMetadata).publish(meta(7))
        read = bus.tail(stream, FrameMetadata).read(START, count=10)
    client.close()
    bad, good = read.entries
    assert bad.message is None and "bad_protobuf" in bad.problem and bad.cursor.number == 1
    assert good.message is not None and good.cursor.number == 2


@pytest.mark.parametrize(
    ("window", "after", "placed"),
    [
        # Before the first entry of a stream that lost none: just before its oldest, none missed.
        (Window(10, 10, "1-0", "10-0"), Cursor("0-0", 0), (Cursor("0-18446744073709551615", 0), 0)),
        (Window(10, 4, "7-0", "10-0"), Cursor("3-0", 3), (Cursor("6-18446744073709551615", 6), 3)),
        (Window(10, 4, "7-0", "10-0"), Cursor("7-0", 7), (Cursor("7-0", 7), 0)),
        (Window(10, 0, None, "10-0"), Cursor("10-0", 10), (Cursor("10-0", 10), 0)),
        (Window(10, 0, None, "10-0"), Cursor("4-0", 4), (Cursor("10-0", 10), 6)),
        # A number this stream could not have given (it was made again): what it trimmed.
        (Window(5, 2, "4-0", "5-0"), Cursor("2-0", 40), (Cursor("3-18446744073709551615", 3), 3)),
    ],
)
def test_window_placement(window: Window, after: Cursor, placed: tuple[Cursor, int]) -> None:
    assert window.place(after) == placed


def test_ids_are_checked() -> None:
    assert id_before("5-0") == "4-18446744073709551615" and id_before("5-3") == "5-2"
    with pytest.raises(ValueError, match="expected a stream entry id"):
        _ = Cursor("five", 1).key
