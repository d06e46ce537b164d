"""The bus's metrics that are read at scrape time: a consumer group's backlog."""

from __future__ import annotations

from heron.core.bus import BusMetrics
from prometheus_client import CollectorRegistry, generate_latest


def test_a_backlog_that_cannot_be_read_is_left_out_not_the_scrape() -> None:
    registry = CollectorRegistry()
    metrics = BusMetrics(registry)

    def gone() -> tuple[int, int] | None:
        raise ConnectionError("Redis went away")

    metrics.watch_group("heron:meta:cams:inference", "tracker", gone)
    metrics.watch_group("heron:meta:cams:tracker", "overlay", lambda: (7, 1))
    metrics.watch_group("heron:meta:cams:tracker", "late", lambda: None)  # no group yet
    text = generate_latest(registry).decode()
    assert (
        'heron_bus_group_lag_messages{group="overlay",topic="heron:meta:cams:tracker"} 7.0' in text
    )
    assert (
        'heron_bus_group_pending_messages{group="overlay",topic="heron:meta:cams:tracker"} 1.0'
        in (text)
    )
    assert 'group="tracker"' not in text  # Redis away: that group's series is left out
    assert 'group="late"' not in text
