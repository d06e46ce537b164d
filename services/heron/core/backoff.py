"""The one retry policy: how long to wait after the n-th failure in a row.

Exponential: the wait after failure n is at most `min(max_s, initial_s * 2**(n - 1))`; with
full jitter (the default) it is drawn from [0, that bound], so replicas that lost the same
dependency do not come back at the same instant; without it, it is the bound itself.

The arithmetic is redis-py's (`redis.backoff`), the bus's own backoff: the core depends on
redis-py anyway, and a `Backoff` is one of its `AbstractBackoff`s, so it drives redis-py's
`Retry` (the bus's `Reconnector`, the overlay's Redis sink) as well as the loops that are no
single call to repeat: a camera's reconnects (heron.ingest.worker), a stage holding its work
(heron.core.runtime.stage), Triton readiness, a client resuming its subscription. tenacity
(9.x in the registry) was weighed: those loops publish events, keep state machines and wait on
stop events between tries, which tenacity's decorator shape fits no better, and it would be
one more dependency for every image.

Where a loop's limits have DeepStream semantics they stay with the loop: ingest counts
`rtsp-reconnect-attempts` itself (attempts since frames last flowed) and asks this policy only
for the wait.
"""

from __future__ import annotations

from redis.backoff import AbstractBackoff, ExponentialBackoff, FullJitterBackoff


class Backoff(AbstractBackoff):
    """Capped exponential backoff, with full jitter unless `jitter=False`.

    Stateless use: `compute(n)`, the wait after failure n (n >= 1, as redis-py's `Retry`
    counts). Stateful use: `next()` counts one more failure and returns its wait; `reset()`
    (the work succeeded) starts the count again.
    """

    def __init__(self, initial_s: float, max_s: float, *, jitter: bool = True) -> None:
        if not 0 < initial_s <= max_s:
            raise ValueError(
                f"backoff: expected 0 < initial_s <= max_s, got initial_s={initial_s!r}, "
                f"max_s={max_s!r}"
            )
        self.initial_s = initial_s
        self.max_s = max_s
        self.jitter = jitter
        self.failures = 0  # failures in a row counted by `next()`
        self._bound = ExponentialBackoff(cap=max_s, base=initial_s)
        self._jittered = FullJitterBackoff(cap=max_s, base=initial_s)

    def __repr__(self) -> str:
        return (
            f"Backoff(initial_s={self.initial_s!r}, max_s={self.max_s!r}, "
            f"jitter={self.jitter!r}, failures={self.failures})"
        )

    def bound(self, failures: int) -> float:
        """The longest wait after failure `failures` (the wait itself without jitter)."""
        return float(self._bound.compute(_doublings(failures)))

    def compute(self, failures: int) -> float:
        """The wait after failure `failures` in a row, counting from 1."""
        if not self.jitter:
            return self.bound(failures)
        return float(self._jittered.compute(_doublings(failures)))

    def next(self) -> float:
        """Count one more failure; the wait before trying again."""
        self.failures += 1
        return self.compute(self.failures)

    def reset(self) -> None:
        """Success: the next failure waits as the first did. (redis-py's `Retry` calls it at
        the start of every call.)"""
        self.failures = 0


def _doublings(failures: int) -> int:
    """redis-py's backoffs count from 0 (the first wait is `base`); ours from 1, as `Retry`."""
    if failures < 1:
        raise ValueError(f"backoff: failures count from 1, got {failures}")
    return failures - 1
