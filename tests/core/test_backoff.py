"""The one retry policy: exponential waits, capped, with full jitter or without; a count that
resets; and the same object driving redis-py's `Retry`."""

from __future__ import annotations

import pytest
import redis
from heron.core.backoff import Backoff
from redis.retry import Retry


def test_without_jitter_the_wait_doubles_from_initial_up_to_max() -> None:
    backoff = Backoff(0.1, 0.5, jitter=False)
    assert [backoff.next() for _ in range(6)] == pytest.approx([0.1, 0.2, 0.4, 0.5, 0.5, 0.5])
    assert backoff.failures == 6


def test_reset_starts_the_count_again() -> None:
    backoff = Backoff(0.1, 10.0, jitter=False)
    backoff.next()
    backoff.next()
    backoff.reset()
    assert backoff.failures == 0
    assert backoff.next() == pytest.approx(0.1)


@pytest.mark.parametrize("failures", [1, 2, 3, 5, 10, 60, 2000])
def test_full_jitter_stays_between_zero_and_the_bound(failures: int) -> None:
    backoff = Backoff(0.05, 2.0)
    bound = min(2.0, 0.05 * 2 ** min(failures - 1, 100))
    assert backoff.bound(failures) == pytest.approx(bound)
    waits = [backoff.compute(failures) for _ in range(500)]
    assert all(0.0 <= w <= bound for w in waits)
    # Full jitter spreads over the whole range, not bunched at the bound.
    assert min(waits) < 0.2 * bound and max(waits) > 0.8 * bound


@pytest.mark.parametrize(
    ("initial_s", "max_s"), [(0.0, 1.0), (-1.0, 1.0), (2.0, 1.0)], ids=["zero", "negative", "max"]
)
def test_bad_bounds_are_refused(initial_s: float, max_s: float) -> None:
    with pytest.raises(ValueError, match=r"expected 0 < initial_s <= max_s, got initial_s="):
        Backoff(initial_s, max_s)


def test_failures_count_from_one() -> None:
    with pytest.raises(ValueError, match="count from 1, got 0"):
        Backoff(0.1, 1.0).compute(0)


def test_it_drives_redis_retry_and_gives_up_after_the_attempts() -> None:
    """redis-py's `Retry` asks `compute(1)`, `compute(2)`... and resets it at every call."""
    asked: list[float] = []

    class Recording(Backoff):
        def compute(self, failures: int) -> float:
            asked.append(failures)
            return 0.0

    calls: list[int] = []

    def failing() -> None:
        calls.append(1)
        raise redis.ConnectionError("down")

    retry = Retry(Recording(0.01, 0.1), 3)
    with pytest.raises(redis.ConnectionError):
        retry.call_with_retry(failing, lambda _e: None)
    assert len(calls) == 4  # the try and 3 retries
    assert asked == [1, 2, 3]
