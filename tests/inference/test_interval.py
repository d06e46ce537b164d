"""nvinfer `interval`: which frames of each stream are inferred."""

from __future__ import annotations

import pytest
from heron.inference.interval import IntervalGate


@pytest.mark.parametrize(
    ("interval", "pattern"),
    [
        (0, [True] * 6),
        (1, [True, False] * 3),
        (2, [True, False, False, True, False, False]),
    ],
)
def test_every_interval_plus_one_frames_per_stream(interval: int, pattern: list[bool]) -> None:
    gate = IntervalGate(interval)
    # Two streams interleaved: each keeps its own count.
    got = [(gate.admit("a"), gate.admit("b")) for _ in pattern]
    assert [a for a, _ in got] == pattern
    assert [b for _, b in got] == pattern


def test_reset_starts_every_stream_over() -> None:
    gate = IntervalGate(1)
    assert [gate.admit("a") for _ in range(3)] == [True, False, True]
    gate.reset()
    assert gate.admit("a") is True


def test_negative_interval_is_refused() -> None:
    with pytest.raises(ValueError, match="interval must be >= 0, got -1"):
        IntervalGate(-1)
