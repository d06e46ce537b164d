"""The message-broker sink (type=6) and its adapters: Redis streams, MQTT, Kafka, AMQP."""

from heron.overlay.sinks.broker.adapters import PROTO_LIBS, adapter_kind, make_adapter
from heron.overlay.sinks.broker.conn import BrokerOptions, Endpoint, parse_conn_str, resolve
from heron.overlay.sinks.broker.schema import frame_payloads, object_message
from heron.overlay.sinks.broker.sink import BrokerSink

__all__ = [
    "PROTO_LIBS",
    "BrokerOptions",
    "BrokerSink",
    "Endpoint",
    "adapter_kind",
    "frame_payloads",
    "make_adapter",
    "object_message",
    "parse_conn_str",
    "resolve",
]
