"""libnvds_kafka_proto.so: each message is produced to the Kafka topic (the conn-str's third
field is the topic when `topic` is unset, as in old DeepStream configs). `proto-cfg` /
`producer-proto-cfg` ("key=value;key=value") are librdkafka options; `partition-key` names
the message field whose value is the record key (DeepStream uses "sensor.id")."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from heron.overlay.sinks.base import BrokerError, SinkConfigError
from heron.overlay.sinks.broker.conn import BrokerOptions

FLUSH_TIMEOUT_S = 10.0


def librdkafka_options(text: str | None, where: str) -> dict[str, str]:
    options: dict[str, str] = {}
    for item in (text or "").split(";"):
        if not item.strip():
            continue
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise SinkConfigError(
                f"{where} proto-cfg: expected 'key=value;key=value', got {item.strip()!r}"
            )
        options[key.strip()] = value.strip()
    return options


def record_key(payload: bytes, path: str | None) -> bytes | None:
    """The value at dotted `path` ("sensor.id") of the JSON payload, as the record key."""
    if not path:
        return None
    value: Any = json.loads(payload)
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return None if value is None else str(value).encode()


class KafkaAdapter:
    def __init__(self, options: BrokerOptions) -> None:
        from confluent_kafka import Producer

        s = options.settings
        self.topic = options.topic
        self.where = f"kafka://{options.host}:{options.port} topic {self.topic!r}"
        config = {"bootstrap.servers": f"{options.host}:{options.port}"}
        config |= librdkafka_options(s.proto_cfg, self.where)
        config |= librdkafka_options(s.producer_proto_cfg, self.where)
        self.partition_key = s.partition_key
        self.errors: list[str] = []
        self.producer = Producer(config)

    def _delivered(self, err: Any, _msg: Any) -> None:
        if err is not None:
            self.errors.append(str(err))

    def send(self, payloads: Sequence[bytes]) -> None:
        for payload in payloads:
            key = record_key(payload, self.partition_key)
            self.producer.produce(self.topic, payload, key, on_delivery=self._delivered)
            self.producer.poll(0)
        left = self.producer.flush(FLUSH_TIMEOUT_S)
        errors, self.errors = self.errors, []
        if left or errors:
            detail = errors[0] if errors else f"{left} messages not delivered in time"
            raise BrokerError(f"{self.where}: {detail}")

    def close(self) -> None:
        self.producer.flush(FLUSH_TIMEOUT_S)
