"""The loop a stage on the bus runs: read → handle → publish → reject → acknowledge.

A unit of work is read once. When finishing it fails for now — its output stream is full
(BackpressureError), or `handle` raised one of the service's `retry_on` errors (a backend
restarting) — the same unit is held and tried again after a wait; it is never read again, and
its deliveries stay pending until it is done, so nothing acknowledged lacks its output. Each
part is done once: `handle` until it completes, the outputs until they are published, each
rejection until it is dead-lettered. See docs/runtime.md, "A stage on the bus".
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from google.protobuf.message import Message

from heron.core.backoff import Backoff
from heron.core.bus import BackpressureError, Consumer, Delivery, Publisher
from heron.core.runtime.metrics import oldest_frame
from heron.core.runtime.service import ServiceContext
from heron.v1.detection_pb2 import FrameMetadata
from heron.v1.frame_pb2 import FrameRef

log = logging.getLogger(__name__)

Out = TypeVar("Out", bound=Message)


class Inputs(Protocol):
    """Deliveries read from one consumer, acknowledged together once the work is done."""

    @property
    def consumer(self) -> Consumer[Any]: ...

    @property
    def deliveries(self) -> Sequence[Delivery[Any]]: ...


@dataclass(frozen=True)
class Received:
    """The plain `Inputs`: what one read of one consumer returned."""

    consumer: Consumer[Any]
    deliveries: Sequence[Delivery[Any]]


@dataclass(frozen=True)
class Rejection:
    """A delivery (or a part of one) the stage cannot use, for `Consumer.reject`."""

    consumer: Consumer[Any]
    delivery: Delivery[Any]
    reason: str
    detail: str
    payload: bytes | None = None  # the refused part, when it is not the whole message
    type_name: str | None = None


@dataclass
class Work(Generic[Out]):
    """One unit of work read from the bus; services subclass it to carry their own state."""

    inputs: Sequence[Inputs]
    out: list[Out] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)
    handled: bool = False  # `handle` completed: only publishing is left
    published: bool = False  # outputs out: only dead letters and acks are left
    dead_lettered: int = 0

    @property
    def messages(self) -> int:
        return sum(len(i.deliveries) for i in self.inputs)


W = TypeVar("W", bound=Work[Any])


class Stage(Generic[Out, W]):
    """Holds at most one unit of work and finishes it: `step()` from the service's step,
    `drain()` from its drain. `take` reads (None: nothing came); `handle` fills `out` and
    `rejected` and may raise a `retry_on` error, after which it runs again on the same work.
    """

    def __init__(
        self,
        ctx: ServiceContext[Any],
        *,
        name: str,
        output: Publisher[Out],
        take: Callable[[], W | None],
        handle: Callable[[W], None],
        retry_initial_s: float,
        retry_max_s: float,
        retry_on: tuple[type[Exception], ...] = (),
    ) -> None:
        self.ctx = ctx
        self.name = name
        self.output = output
        self._take = take
        self._handle = handle
        self._retry_on = retry_on
        # No jitter: one stage retries one dependency, and its waits are what the docs promise.
        self._backoff = Backoff(retry_initial_s, retry_max_s, jitter=False)
        self.held: W | None = None

    @property
    def retry_s(self) -> float:
        """The next wait: retry_initial_s, doubled by each `retry_on` failure in a row up to
        retry_max_s, back to retry_initial_s once work is done."""
        return self._backoff.bound(self._backoff.failures + 1)

    def step(self) -> W | None:
        """Finish the held work, else read new work and finish it; returns the work finished."""
        if self.held is None:
            self.held = self._take()
            if self.held is None:
                return None
        try:
            self._finish(self.held)
        except BackpressureError as e:
            log.warning("%s output stream full, retrying in %.1f s: %s", self.name, self.retry_s, e)
            self.ctx.wait(self.retry_s)
            return None
        except self._retry_on as e:
            # Only a failure that repeats waits longer: a full stream clears as readers go on.
            delay = self._backoff.next()
            log.warning("%s: %s; retrying in %.1f s", self.name, e, delay)
            self.ctx.wait(delay)
            return None
        done, self.held = self.held, None
        self._backoff.reset()
        return done

    def drain(self) -> W | None:
        """One last try at held work; if it still cannot finish, it stays pending on the bus."""
        if self.held is None:
            return None
        temporary: tuple[type[Exception], ...] = (BackpressureError, *self._retry_on)
        try:
            self._finish(self.held)
        except temporary as e:
            left = self.held.messages
            log.warning("%s left %d messages unacknowledged at stop: %s", self.name, left, e)
            return None
        done, self.held = self.held, None
        return done

    def _finish(self, work: W) -> None:
        if not work.handled:
            self._handle(work)
            work.handled = True
        named = oldest_frame(_frames(work.out))
        with self.ctx.metrics.track(f"{self.name}.publish", frames=len(work.out), frame=named):
            if not work.published:
                self.output.publish_many(work.out)
                work.published = True
            for r in list(work.rejected):
                # Acknowledged below with the rest: a delivery may hold more refused parts.
                r.consumer.reject(
                    r.delivery,
                    r.reason,
                    r.detail,
                    payload=r.payload,
                    type_name=r.type_name,
                    ack=False,
                )
                work.rejected.remove(r)  # sent: a retry must not send it twice
                work.dead_lettered += 1
        # Only now: a crash before this line leaves the input pending, to be redelivered.
        for inputs in work.inputs:
            inputs.consumer.ack(inputs.deliveries)


def _frames(out: Sequence[Message]) -> Iterator[FrameRef]:
    """The frames a unit's outputs describe (FrameMetadata's), for the publish's exemplar."""
    return (m.frame for m in out if isinstance(m, FrameMetadata))
