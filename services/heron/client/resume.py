"""How a subscription carries on after its connection drops: the same request again, with
the last position delivered as `after`, so the server sends what follows it — nothing twice,
nothing missed while its retention window holds (past it, the server's first event is a Gap).

One policy for the sync and the asyncio client; they only differ in how they wait.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import grpc

from heron.core.backoff import Backoff
from heron.v1 import control_pb2

# Statuses of a dropped connection or a server going away, worth calling again for. Every
# other status is an answer (a bad field, a wrong token) that calling again would not change.
RESUMABLE = frozenset(
    {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.ABORTED, grpc.StatusCode.CANCELLED}
)

# The wait before calling again (heron.core.backoff, full jitter: the clients of a restarted
# server do not all call again at once): at most 0.1 s, doubling to at most 2 s.
FIRST_DELAY_S = 0.1
MAX_DELAY_S = 2.0
# A call that stayed open this long reached a live server, even if it delivered nothing: a
# refused connection or a failed TLS handshake fails within milliseconds.
STABLE_S = 1.0


@dataclass
class Resume:
    """Where a subscription is, and how long to wait before calling again."""

    request: control_pb2.SubscribeRequest
    reconnect_timeout_s: float  # give up after failing this long in a row
    position: str = ""  # of the last event delivered; "" before the first
    reconnects: int = 0
    reached: bool = False  # a call delivered an event, or stayed open STABLE_S
    _failing_since: float | None = field(default=None, repr=False)
    _backoff: Backoff = field(
        default_factory=lambda: Backoff(FIRST_DELAY_S, MAX_DELAY_S), repr=False
    )

    def next_request(self) -> control_pb2.SubscribeRequest:
        """The request for the next call: the original one, continuing after `position`."""
        request = control_pb2.SubscribeRequest()
        request.CopyFrom(self.request)
        if self.position:
            request.after = self.position
            request.from_oldest = False
        return request

    def delivered(self, event: control_pb2.DetectionEvent) -> None:
        if event.position:  # a gap may carry none: the frame after it does
            self.position = event.position
        self.reached = True
        self._succeeded()

    def may_resume(self, code: grpc.StatusCode, opened_at: float, now: float) -> bool:
        """Whether a call that failed with `code` is worth calling again. Not when the server
        answered (a bad field, a wrong token), nor when it was never reached: a server absent
        at the start is reported at once, not retried for reconnect_timeout_s."""
        return code in RESUMABLE and (self.reached or now - opened_at >= STABLE_S)

    def dropped(self, opened_at: float, now: float) -> float | None:
        """Seconds to wait before calling again, or None: failing too long, give up."""
        if now - opened_at >= STABLE_S:
            self.reached = True
            self._succeeded()
        if self._failing_since is None:
            self._failing_since = now
        if now - self._failing_since >= self.reconnect_timeout_s:
            return None
        self.reconnects += 1
        return self._backoff.next()

    def _succeeded(self) -> None:
        self._failing_since = None
        self._backoff.reset()
