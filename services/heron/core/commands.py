"""Run-time changes over the bus (protos/heron/v1/commands.proto).

The control service sends a `Command` and waits for the replies it needs:

    sender = CommandSender(bus, pipeline)
    replies = sender.send(command, timeout_s=5.0)   # [] when nobody answered in time

The stage that owns a kind of command follows the command stream and answers each one it
handles; `handle` returns None for commands that belong to another stage:

    follower = CommandFollower(bus, pipeline, service="ingest", instance=name, handle=apply)
    follower.start() ... follower.stop()

A follower reads from the newest entry when it starts: a command sent while no stage was up
got no reply (the caller gave up, UNAVAILABLE) and is never applied later. One that arrives
after its `expires` is skipped for the same reason: its caller has already been told it failed.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from enum import IntEnum

from google.protobuf.timestamp_pb2 import Timestamp

from heron.core import streams
from heron.core.backoff import Backoff
from heron.core.bus import Bus, BusError, Cursor
from heron.v1.commands_pb2 import Command, CommandReply, SourceChanges

log = logging.getLogger(__name__)

READ_COUNT = 32
READ_BLOCK_MS = 500  # a stop is noticed within this
# After a bus error, before reading again (heron.core.backoff): Redis restarting is met soon,
# a long outage is not asked about every second.
RETRY_INITIAL_S = 0.1
RETRY_MAX_S = 2.0


class ReplyCode(IntEnum):
    """gRPC's status codes, by number: the core does not depend on grpcio, and a reply's code
    is what the control service returns to its caller."""

    OK = 0
    INVALID_ARGUMENT = 3
    DEADLINE_EXCEEDED = 4
    NOT_FOUND = 5
    ALREADY_EXISTS = 6
    FAILED_PRECONDITION = 9
    INTERNAL = 13
    UNAVAILABLE = 14


def reply(code: ReplyCode, message: str = "") -> CommandReply:
    return CommandReply(code=int(code), message=message)


def expired(command: Command, now_s: float | None = None) -> bool:
    if not command.HasField("expires"):
        return False
    now = time.time() if now_s is None else now_s
    return command.expires.ToNanoseconds() < int(now * 1e9)


class CommandSender:
    """Publishes commands and collects the replies to each (thread-safe: one tail per call)."""

    def __init__(self, bus: Bus, pipeline: str) -> None:
        self._commands = bus.publisher(streams.commands(pipeline), Command)
        self._replies = bus.tail(streams.replies(pipeline), CommandReply)

    def send(
        self,
        command: Command,
        timeout_s: float,
        *,
        enough: Callable[[list[CommandReply]], bool] = bool,
    ) -> list[CommandReply]:
        """Send `command` (its request id and expiry are set here) and return its replies
        once `enough(replies)` holds (by default: the first) or `timeout_s` has passed."""
        cursor = self._replies.window().newest  # replies before the command are not its own
        command.request_id = uuid.uuid4().hex
        expires = Timestamp()
        expires.FromNanoseconds(int((time.time() + timeout_s) * 1e9))
        command.expires.CopyFrom(expires)
        self._commands.publish(command)
        deadline = time.monotonic() + timeout_s
        got: list[CommandReply] = []
        while (left := deadline - time.monotonic()) > 0:
            # Short reads: a long wait (a model loading) must not outlast the socket timeout.
            block_ms = max(1, min(int(left * 1000), READ_BLOCK_MS))
            read = self._replies.read(cursor, READ_COUNT, block_ms=block_ms)
            cursor = read.end
            got += [
                e.message
                for e in read.entries
                if e.message is not None and e.message.request_id == command.request_id
            ]
            if got and enough(got):
                break
        return got


Handler = Callable[[Command], CommandReply | None]


class CommandFollower(threading.Thread):
    """Applies the commands a stage owns as they arrive, and answers each one."""

    def __init__(
        self, bus: Bus, pipeline: str, *, service: str, instance: str, handle: Handler
    ) -> None:
        super().__init__(name=f"{service}-commands", daemon=True)
        self.service = service
        self.instance = instance
        self._handle = handle
        self._commands = bus.tail(streams.commands(pipeline), Command)
        self._replies = bus.publisher(streams.replies(pipeline), CommandReply)
        self._cursor: Cursor = self._commands.window().newest
        self._stopping = threading.Event()
        self.applied = 0

    def stop(self, timeout_s: float = READ_BLOCK_MS / 1000 + 1) -> None:
        self._stopping.set()
        if self.is_alive():
            self.join(timeout_s)

    def run(self) -> None:
        backoff = Backoff(RETRY_INITIAL_S, RETRY_MAX_S)
        while not self._stopping.is_set():
            try:
                self.poll(READ_BLOCK_MS)
            except BusError as e:  # Redis restarting: the service's own checks report it
                delay = backoff.next()
                log.warning("reading commands: %s; retrying in %.1f s", e, delay)
                self._stopping.wait(delay)
                continue
            backoff.reset()

    def poll(self, block_ms: int = 0) -> int:
        """Handle the commands that arrived since the last poll; how many were answered."""
        read = self._commands.read(self._cursor, READ_COUNT, block_ms=block_ms)
        answered = 0
        for entry in read.entries:
            self._cursor = entry.cursor  # taken: never applied twice, even if its reply fails
            command = entry.message
            if command is None:
                log.warning("skipping an undecodable command: %s", entry.problem)
            elif expired(command):
                log.warning("skipping command %s: it expired before it arrived", command.request_id)
            elif (answer := self._answer(command)) is not None:
                self._replies.publish(answer)
                answered += 1
        self._cursor = read.end
        return answered

    def _answer(self, command: Command) -> CommandReply | None:
        try:
            answer = self._handle(command)
        except Exception as e:  # a bug must not end the follower: say so to the caller
            log.exception("command %s failed", command.request_id)
            answer = reply(ReplyCode.INTERNAL, f"{self.service}: {type(e).__name__}: {e}")
        if answer is None:
            return None
        self.applied += answer.code == ReplyCode.OK
        answer.request_id = command.request_id
        answer.service = self.service
        answer.instance = self.instance
        return answer


def added_streams(bus: Bus, pipeline: str) -> list[str]:
    """The stream ids ingest has added to `pipeline` at run time (its newest SourceChanges):
    what stages that admit only the pipeline's streams add to the config's."""
    changes = bus.newest(streams.source_changes(pipeline), SourceChanges)
    return [] if changes is None else [spec.stream_id for spec in changes.added]
