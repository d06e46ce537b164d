"""The bus: typed publish/consume of heron.v1 messages with consumer groups.

See docs/bus.md. A service names only the protocols (`Bus`, `Publisher`, `Consumer`); its
runner picks the transport that builds its `Bus`: Redis streams (`RedisTransport`, the default
and what Kubernetes runs) or queues inside one process (`MemoryTransport`, for
`heron run --in-process`). Every stream name comes from heron.core.streams.
"""

from heron.core.bus.bus import RedisBus, RedisTransport, default_consumer_name
from heron.core.bus.consumer import Delivery, RedisConsumer
from heron.core.bus.errors import (
    BackpressureError,
    BusError,
    BusUnavailableError,
    DeadLetterReason,
    ReplyError,
    StreamTypeError,
    UndecodableMessageError,
)
from heron.core.bus.memory import MemoryBus, MemoryStreams, MemoryTransport
from heron.core.bus.metrics import BusMetrics, default_metrics
from heron.core.bus.protocols import Bus, Consumer, Publisher, Tail, Transport
from heron.core.bus.publisher import RedisPublisher
from heron.core.bus.settings import (
    BackoffSettings,
    BusSettings,
    ConsumerSettings,
    RetentionSettings,
)
from heron.core.bus.tail import Cursor, TailEntry, TailRead, Window

__all__ = [
    "BackoffSettings",
    "BackpressureError",
    "Bus",
    "BusError",
    "BusMetrics",
    "BusSettings",
    "BusUnavailableError",
    "Consumer",
    "ConsumerSettings",
    "Cursor",
    "DeadLetterReason",
    "Delivery",
    "MemoryBus",
    "MemoryStreams",
    "MemoryTransport",
    "Publisher",
    "RedisBus",
    "RedisConsumer",
    "RedisPublisher",
    "RedisTransport",
    "ReplyError",
    "RetentionSettings",
    "StreamTypeError",
    "Tail",
    "TailEntry",
    "TailRead",
    "Transport",
    "UndecodableMessageError",
    "Window",
    "default_consumer_name",
    "default_metrics",
]
