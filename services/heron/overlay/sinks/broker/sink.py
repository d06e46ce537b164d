"""type=6: the message-broker sink (nvmsgconv + nvmsgbroker in one): every `msg-conv-frame-
interval`-th frame of each stream becomes one JSON message per object (see schema.py), sent
through the adapter `msg-broker-proto-lib` names. It uses the metadata only, never pixels."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from heron.core.config.models import MessageBroker
from heron.core.config.sinks import MsgBrokerSink
from heron.overlay.sinks.base import Image, SinkConfigError
from heron.overlay.sinks.broker.adapters import Adapter, adapter_kind, make_adapter
from heron.overlay.sinks.broker.conn import resolve
from heron.overlay.sinks.broker.schema import frame_payloads
from heron.v1.detection_pb2 import FrameMetadata

log = logging.getLogger(__name__)


class BrokerSink:
    kind = "msgbroker"

    def __init__(self, name: str, adapter: Adapter, *, frame_interval: int = 1) -> None:
        if frame_interval < 1:
            raise SinkConfigError(
                f"[{name}] msg-conv-frame-interval: expected >= 1, got {frame_interval}"
            )
        self.name, self.adapter, self.frame_interval = name, adapter, frame_interval
        self.messages = 0

    @classmethod
    def from_sink(
        cls, name: str, sink: MsgBrokerSink, broker: MessageBroker | None = None
    ) -> BrokerSink:
        where = f"[{name}] (type=6 msgbroker)"
        if sink.msg_conv_payload_type not in (0, 1):
            log.warning(
                "%s msg-conv-payload-type=%d: Heron sends its one JSON schema (docs/broker.md)",
                where,
                sink.msg_conv_payload_type,
            )
        kind, port, extra_is_topic = adapter_kind(sink.msg_broker_proto_lib, where)
        options = resolve(
            where, sink.msg_broker_conn_str, sink.topic, sink.msg_broker_config, broker, port,
            extra_is_topic=extra_is_topic,
        )  # fmt: skip
        adapter = make_adapter(kind, options)
        log.info("%s: %s adapter to %s:%d topic %r", name, kind, options.host, options.port,
                 options.topic)  # fmt: skip
        return cls(name, adapter, frame_interval=sink.msg_conv_frame_interval)

    def write(self, frame: Image | None, metadata: Sequence[FrameMetadata]) -> None:
        payloads = [
            p
            for meta in metadata
            if meta.frame.frame_number % self.frame_interval == 0
            for p in frame_payloads(meta)
        ]
        if payloads:
            self.adapter.send(payloads)
            self.messages += len(payloads)

    def commit(self) -> None:
        pass  # adapter.send returns once the broker took the messages

    def close(self) -> None:
        self.adapter.close()

    def reset(self) -> None:
        pass
