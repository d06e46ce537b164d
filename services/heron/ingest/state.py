"""A stream's life cycle: which states exist and which moves between them are legal."""

from __future__ import annotations

import threading
from enum import StrEnum


class StreamState(StrEnum):
    CONNECTING = "connecting"  # opening the source for the first time
    PLAYING = "playing"  # frames are flowing
    RECONNECTING = "reconnecting"  # the source went away; waiting to try again
    EOS = "eos"  # a finite source ended (terminal)
    ERROR = "error"  # gave up (terminal)


_MOVES: dict[StreamState, frozenset[StreamState]] = {
    StreamState.CONNECTING: frozenset(
        {StreamState.PLAYING, StreamState.RECONNECTING, StreamState.EOS, StreamState.ERROR}
    ),
    StreamState.PLAYING: frozenset({StreamState.RECONNECTING, StreamState.EOS, StreamState.ERROR}),
    StreamState.RECONNECTING: frozenset(
        {StreamState.PLAYING, StreamState.RECONNECTING, StreamState.EOS, StreamState.ERROR}
    ),
    StreamState.EOS: frozenset(),
    StreamState.ERROR: frozenset(),
}


class IllegalTransitionError(RuntimeError):
    pass


class StreamStateMachine:
    """The current state of one stream; `to()` refuses moves the table does not allow."""

    def __init__(self, stream_id: str) -> None:
        self.stream_id = stream_id
        self._state = StreamState.CONNECTING
        self._lock = threading.Lock()

    @property
    def state(self) -> StreamState:
        with self._lock:
            return self._state

    @property
    def finished(self) -> bool:
        return self.state in (StreamState.EOS, StreamState.ERROR)

    def to(self, new: StreamState) -> StreamState:
        """Move to `new`; returns the state left."""
        with self._lock:
            old = self._state
            if new not in _MOVES[old]:
                raise IllegalTransitionError(
                    f"stream {self.stream_id}: cannot go from {old.value} to {new.value}"
                )
            self._state = new
            return old
