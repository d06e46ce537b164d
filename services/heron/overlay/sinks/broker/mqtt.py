"""libnvds_mqtt_proto.so: each message is published to the MQTT topic with QoS 1 (the broker
acknowledges it); `send` waits for the acknowledgements. Client id, keep-alive, user/password
and TLS files come from [message-broker] / msg-broker-config, as DeepStream's adapter reads."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from heron.overlay.sinks.base import BrokerError
from heron.overlay.sinks.broker.conn import BrokerOptions

log = logging.getLogger(__name__)
ACK_TIMEOUT_S = 10.0


class MqttAdapter:
    def __init__(self, options: BrokerOptions) -> None:
        s = options.settings
        self.topic = options.topic
        self.where = f"mqtt://{options.host}:{options.port} topic {self.topic!r}"
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=s.client_id or "", clean_session=True
        )
        if s.username:
            password = options.password.get_secret_value() if options.password else None
            self.client.username_pw_set(s.username, password)
        if s.enable_tls:
            self.client.tls_set(
                ca_certs=str(s.tls_cafile) if s.tls_cafile else None,
                certfile=str(s.tls_certfile) if s.tls_certfile else None,
                keyfile=str(s.tls_keyfile) if s.tls_keyfile else None,
            )
        try:
            self.client.connect(options.host, options.port, keepalive=s.keep_alive or 60)
        except OSError as e:
            raise BrokerError(f"{self.where}: cannot connect: {e}") from e
        self.client.loop_start()  # paho's network thread: reconnects by itself
        deadline = time.monotonic() + ACK_TIMEOUT_S
        while not self.client.is_connected() and time.monotonic() < deadline:
            time.sleep(0.01)  # CONNACK comes on the network thread
        if not self.client.is_connected():
            self.close()
            raise BrokerError(f"{self.where}: no CONNACK within {ACK_TIMEOUT_S:.0f} s")

    def send(self, payloads: Sequence[bytes]) -> None:
        if not self.client.is_connected():
            # paho's thread is reconnecting: fail fast rather than stall the overlay's loop.
            raise BrokerError(f"{self.where}: not connected (reconnecting)")
        infos = [self.client.publish(self.topic, p, qos=1) for p in payloads]
        deadline = time.monotonic() + ACK_TIMEOUT_S
        for info in infos:
            if info.rc != mqtt.MQTT_ERR_SUCCESS:
                raise BrokerError(f"{self.where}: publish failed: {mqtt.error_string(info.rc)}")
            try:
                info.wait_for_publish(max(0.0, deadline - time.monotonic()))
            except RuntimeError as e:  # paho raises when the message can never be sent
                raise BrokerError(f"{self.where}: {e}") from e
            if not info.is_published():
                raise BrokerError(f"{self.where}: no PUBACK within {ACK_TIMEOUT_S:.0f} s")

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
