"""What the bus raises. Callers tell temporary trouble (retry later) from bad input by type."""

from __future__ import annotations

from enum import Enum


class BusError(Exception):
    """Base of every error the bus raises itself."""


class BusUnavailableError(BusError):
    """Redis stayed unreachable longer than `backoff.give_up_after_s`."""


class BackpressureError(BusError):
    """A stream that keeps unread entries is full and stayed full for the whole timeout.

    Nothing was lost: `published_ids` lists what did get in before the wait ran out; the
    rest of the batch was not added.
    """

    def __init__(
        self, stream: str, max_len: int, waited_s: float, published_ids: list[str], remaining: int
    ) -> None:
        super().__init__(
            f"stream {stream!r} is at its bound of {max_len} entries and a consumer group "
            f"still needs the oldest; waited {waited_s:.2f} s; {len(published_ids)} message(s) "
            f"published, {remaining} not"
        )
        self.stream = stream
        self.max_len = max_len
        self.waited_s = waited_s
        self.published_ids = published_ids
        self.remaining = remaining


class StreamTypeError(BusError, TypeError):
    """A message class or instance that is not what the stream carries."""


class ReplyError(BusError):
    """Redis answered with a shape the bus does not understand (a protocol mismatch)."""


class DeadLetterReason(Enum):
    """Why a message went to the dead-letter stream; the value is the metric label."""

    MISSING_FIELD = "missing_field"
    WRONG_TYPE = "wrong_type"
    BAD_PROTOBUF = "bad_protobuf"
    BAD_HEADER = "bad_header"
    POISON = "poison"


class UndecodableMessageError(BusError):
    """A stream entry that cannot become the stream's message type."""

    def __init__(self, reason: DeadLetterReason, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail
