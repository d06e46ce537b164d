"""The Redis-streams bus: typed publish/consume of heron.v1 messages with consumer groups.

See docs/bus.md. Build one `Bus` in a service's bootstrap and take publishers and consumers
from it; every stream name comes from heron.core.streams.
"""

from heron.core.bus.bus import Bus, default_consumer_name
from heron.core.bus.consumer import Consumer, Delivery
from heron.core.bus.errors import (
    BackpressureError,
    BusError,
    BusUnavailableError,
    DeadLetterReason,
    ReplyError,
    StreamTypeError,
    UndecodableMessageError,
)
from heron.core.bus.metrics import BusMetrics, default_metrics
from heron.core.bus.publisher import Publisher
from heron.core.bus.settings import (
    BackoffSettings,
    BusSettings,
    ConsumerSettings,
    RetentionSettings,
)

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
    "DeadLetterReason",
    "Delivery",
    "Publisher",
    "ReplyError",
    "RetentionSettings",
    "StreamTypeError",
    "UndecodableMessageError",
    "default_consumer_name",
    "default_metrics",
]
