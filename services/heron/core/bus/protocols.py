"""What a stage asks of the bus, whatever carries the messages.

Two transports implement these: Redis streams (`RedisBus`, what Kubernetes runs: stages in
separate processes and pods, consumer groups surviving crashes) and queues inside one process
(`MemoryBus`, for `heron run --in-process`). A service's code names only these protocols, so
the same stage code runs on either.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol, TypeVar

from google.protobuf.message import Message
from prometheus_client import CollectorRegistry

from heron.core.bus.consumer import Delivery
from heron.core.bus.settings import BusSettings
from heron.core.bus.tail import Cursor, TailRead, Window
from heron.core.streams import StreamName

M = TypeVar("M", bound=Message)
M_contra = TypeVar("M_contra", bound=Message, contravariant=True)


class Publisher(Protocol[M_contra]):
    """Publishes one message type to one stream, under the stream's retention rule."""

    @property
    def stream(self) -> StreamName: ...

    @property
    def key(self) -> str: ...

    def publish(self, message: M_contra) -> str: ...

    def publish_many(self, messages: Sequence[M_contra]) -> list[str]:
        """Ids in order; raises BackpressureError when a keep-unread stream stays full."""
        ...

    def trim_acked(self) -> int: ...


class Consumer(Protocol[M]):
    """One member of a consumer group on one stream: at-least-once delivery."""

    @property
    def stream(self) -> StreamName: ...

    @property
    def key(self) -> str: ...

    @property
    def group(self) -> str: ...

    @property
    def name(self) -> str: ...

    def ensure_group(self) -> bool:
        """Create the group unless it exists; True when it was created."""
        ...

    def read(self, count: int | None = None, block_ms: int | None = None) -> list[Delivery[M]]: ...

    def ack(self, deliveries: Iterable[Delivery[M]]) -> int: ...

    def reject(
        self,
        delivery: Delivery[M],
        reason: str,
        detail: str = "",
        *,
        payload: bytes | None = None,
        type_name: str | None = None,
        ack: bool = True,
    ) -> str: ...


class Tail(Protocol[M]):
    """Reads one stream from a position, without a consumer group (heron.core.bus.tail): the
    reader holds nothing back, and is told how many entries a trim took from under it."""

    @property
    def key(self) -> str: ...

    def window(self) -> Window:
        """What the stream holds now: its history's count and the ids at both ends."""
        ...

    def read(self, after: Cursor, count: int, block_ms: int = 0) -> TailRead[M]:
        """Up to `count` entries after `after` (waiting up to `block_ms` for the first), or
        where a trim moved it, with the count missed."""
        ...


class Bus(Protocol):
    """Makes a service's publishers and consumers, and answers what a group has left to do."""

    @property
    def settings(self) -> BusSettings: ...

    def publisher(self, stream: StreamName, message_class: type[M]) -> Publisher[M]: ...

    def consumer(
        self, stream: StreamName, message_class: type[M], group: str, name: str | None = None
    ) -> Consumer[M]: ...

    def tail(self, stream: StreamName, message_class: type[M]) -> Tail[M]:
        """A reader of `stream` from positions it chooses, in no consumer group."""
        ...

    def outstanding(self, key: str, group: str, count_up_to: int) -> int:
        """Entries `group` has not finished on `key` (undelivered plus pending); every entry
        before the group exists; an undelivered count may stop at `count_up_to`."""
        ...

    def entries_added(self, key: str) -> int:
        """Entries ever added to the stream, trimmed ones included; 0 before it exists."""
        ...

    def groups_caught_up(self, key: str) -> dict[str, bool]:
        """Each group on `key`: given every entry now on the stream, and acknowledged them."""
        ...

    def stream_keys(self, pattern: str) -> list[str]:
        """Keys of the streams that exist now and match the glob `pattern` (Redis's MATCH)."""
        ...

    def newest_id(self, key: str) -> str | None:
        """The id of the stream's last entry; None when it is empty or missing."""
        ...

    def unfinished(self, stream: StreamName, message_class: type[M], count_up_to: int) -> list[M]:
        """The messages some consumer group of `stream` has not finished (given and not
        acknowledged, or not given yet; every message before a group exists), oldest first;
        per group, at most the `count_up_to` oldest of each kind. Undecodable ones are left
        out."""
        ...

    def unfinished_ids(self, key: str, group: str, after: str, count_up_to: int) -> list[str]:
        """Ids of the entries newer than `after` that `group` has not finished on `key` (given
        and not acknowledged, or not given yet; every entry before the group exists), oldest
        first; at most `count_up_to` of each kind. [] before the stream exists."""
        ...

    def newest(self, stream: StreamName, message_class: type[M]) -> M | None:
        """The stream's last message; None when it is empty, missing or undecodable."""
        ...

    def ping(self) -> bool: ...

    def close(self) -> None: ...


class Transport(Protocol):
    """Builds each service's `Bus`: the runner chooses it, the service never does."""

    name: str  # "redis" or "in-process", for logs

    def bus(self, settings: BusSettings, registry: CollectorRegistry | None = None) -> Bus: ...
