"""libnvds_amqp_proto.so: each message is published to the AMQP exchange (default
"amq.topic", as DeepStream's adapter) with routing key `topic`, persistent, with publisher
confirms (`send` returns once the broker confirmed). User name: the conn-str's third field,
else `username`, else "guest"; the password comes from msg-broker-config / [message-broker]."""

from __future__ import annotations

from collections.abc import Sequence

import pika  # type: ignore[import-untyped,unused-ignore]
import pika.exceptions  # type: ignore[import-untyped,unused-ignore]

from heron.overlay.sinks.base import BrokerError
from heron.overlay.sinks.broker.conn import BrokerOptions

DEFAULT_EXCHANGE = "amq.topic"


class AmqpAdapter:
    def __init__(self, options: BrokerOptions) -> None:
        s = options.settings
        self.topic = options.topic
        self.exchange = s.exchange or DEFAULT_EXCHANGE
        user = options.extra or s.username or "guest"
        password = options.password.get_secret_value() if options.password else "guest"
        self.where = f"amqp://{user}@{options.host}:{options.port} exchange {self.exchange!r}"
        self.params = pika.ConnectionParameters(
            host=options.host,
            port=options.port,
            credentials=pika.PlainCredentials(user, password),
            frame_max=s.amqp_framesize or pika.spec.FRAME_MAX_SIZE,
            heartbeat=s.amqp_heartbeat,
            connection_attempts=1,
            socket_timeout=2,
            blocked_connection_timeout=5,
        )
        self.properties = pika.BasicProperties(content_type="application/json", delivery_mode=2)
        self.connection: pika.BlockingConnection | None = None
        self._connect()

    def _connect(self) -> None:
        try:
            self.connection = pika.BlockingConnection(self.params)
            self.channel = self.connection.channel()
            self.channel.confirm_delivery()
        except pika.exceptions.AMQPError as e:
            self.connection = None
            raise BrokerError(f"{self.where}: cannot connect: {e!r}") from e

    def send(self, payloads: Sequence[bytes]) -> None:
        if self.connection is None or not self.connection.is_open:
            self._connect()  # the broker restarted or closed an idle connection: once a send
        try:
            for payload in payloads:
                self.channel.basic_publish(
                    self.exchange, self.topic, payload, self.properties, mandatory=False
                )
        except pika.exceptions.AMQPError as e:
            self.connection = None  # reconnect on the next send
            raise BrokerError(f"{self.where}: {e!r}") from e

    def close(self) -> None:
        if self.connection is not None and self.connection.is_open:
            self.connection.close()
