"""Broker adapters, chosen by DeepStream's `msg-broker-proto-lib` file name.

- libnvds_redis_proto.so: an entry of Redis stream `topic` (redis-py)
- libnvds_mqtt_proto.so: MQTT topic, QoS 1 (paho-mqtt)
- libnvds_kafka_proto.so: Kafka topic (confluent-kafka)
- libnvds_amqp_proto.so: AMQP exchange (default amq.topic), routing key `topic` (pika)

Every adapter has `send(payloads)` (blocks until the broker took them, or raises BrokerError)
and `close()`. Clients are made in the constructor, i.e. when the overlay service starts.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from heron.overlay.sinks.base import SinkConfigError
from heron.overlay.sinks.broker.conn import BrokerOptions


class Adapter(Protocol):
    def send(self, payloads: Sequence[bytes]) -> None: ...

    def close(self) -> None: ...


# proto lib file name -> (adapter name, default port, conn-str third field is the topic)
PROTO_LIBS: dict[str, tuple[str, int, bool]] = {
    "libnvds_redis_proto.so": ("redis", 6379, False),
    "libnvds_mqtt_proto.so": ("mqtt", 1883, False),
    "libnvds_kafka_proto.so": ("kafka", 9092, True),
    "libnvds_amqp_proto.so": ("amqp", 5672, False),
}


def adapter_kind(proto_lib: Path, where: str) -> tuple[str, int, bool]:
    """The adapter a proto lib names: only its file name counts (DeepStream's install path
    /opt/nvidia/deepstream/deepstream/lib/ need not exist here)."""
    found = PROTO_LIBS.get(proto_lib.name)
    if found is None:
        raise SinkConfigError(
            f"{where} msg-broker-proto-lib: expected one of {', '.join(PROTO_LIBS)}, "
            f"got {proto_lib.name!r}"
        )
    return found


def make_adapter(kind: str, options: BrokerOptions) -> Adapter:
    """Connect the adapter; its client library is imported only here, when it is used."""
    if kind == "redis":
        from heron.overlay.sinks.broker.redis_streams import RedisStreamAdapter

        return RedisStreamAdapter(options)
    if kind == "mqtt":
        from heron.overlay.sinks.broker.mqtt import MqttAdapter

        return MqttAdapter(options)
    if kind == "kafka":
        from heron.overlay.sinks.broker.kafka import KafkaAdapter

        return KafkaAdapter(options)
    if kind == "amqp":
        from heron.overlay.sinks.broker.amqp import AmqpAdapter

        return AmqpAdapter(options)
    raise SinkConfigError(f"no broker adapter named {kind!r}: expected redis, mqtt, kafka, amqp")
