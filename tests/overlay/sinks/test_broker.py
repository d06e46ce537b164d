"""Broker sink: one nvmsgconv-style JSON message per object, delivered through real brokers
(Redis always; Mosquitto and RabbitMQ when this machine runs them), and clear config errors."""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import redis
from google.protobuf.timestamp_pb2 import Timestamp
from heron.core.config.models import MessageBroker
from heron.core.config.sinks import MsgBrokerSink
from heron.overlay.sinks.base import BrokerError, SinkConfigError
from heron.overlay.sinks.broker import BrokerSink, parse_conn_str, resolve
from heron.overlay.sinks.broker.adapters import adapter_kind
from heron.overlay.sinks.broker.kafka import KafkaAdapter, librdkafka_options, record_key
from heron.overlay.sinks.broker.schema import frame_payloads
from heron.v1.detection_pb2 import BoundingBox, DetectedObject, FrameMetadata
from heron.v1.frame_pb2 import FrameRef

from tests.support.redis_server import free_port

LIB = "/opt/nvidia/deepstream/deepstream/lib/libnvds_{}_proto.so"


def reachable(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def metadata(frame_number: int = 42, objects: int = 2) -> FrameMetadata:
    captured = Timestamp(seconds=1_800_000_000, nanos=123_000_000)
    return FrameMetadata(
        frame=FrameRef(stream_id="cam-1", source_id=3, frame_number=frame_number,
                       capture_time=captured),
        model_name="facemask",
        model_version="7",
        objects=[
            DetectedObject(bbox=BoundingBox(left=10.4 + i, top=20, width=30, height=40.6),
                           class_id=i, label=["Mask", "No-Mask"][i % 2], confidence=0.9,
                           tracker_id=i)
            for i in range(objects)
        ],
    )  # fmt: skip


def check_message(message: dict[str, Any], index: int) -> None:
    uuid.UUID(message["messageid"])
    assert message["@timestamp"] == "2027-01-15T08:00:00.123Z"
    assert message["sensorId"] == "cam-1" and message["sensor"]["sourceId"] == 3
    assert message["frameNumber"] == 42
    obj = message["object"]
    assert obj["id"] == (str(index) if index else "-1")  # tracker id; -1 = untracked
    assert obj["label"] == ["Mask", "No-Mask"][index % 2] and obj["classId"] == index
    assert obj["confidence"] == pytest.approx(0.9)
    assert obj["bbox"] == {"topleftx": 10 + index, "toplefty": 20,
                           "bottomrightx": 40 + index, "bottomrighty": 61}  # fmt: skip


def sink_config(
    proto: str, conn: str | None, topic: str | None = "heron-test", **kw: Any
) -> MsgBrokerSink:
    return MsgBrokerSink(
        type="msgbroker", enable=True, msg_broker_proto_lib=Path(LIB.format(proto)),
        msg_broker_conn_str=conn, topic=topic, msg_conv_frame_interval=1, **kw,
    )  # fmt: skip


def stream_messages(redis_url: str, key: str, field: bytes = b"metadata") -> list[dict[str, Any]]:
    entries: Any = redis.Redis.from_url(redis_url).xrange(key)
    return [json.loads(fields[field]) for _, fields in entries]


def test_one_message_per_object_with_nvmsgconv_fields() -> None:
    payloads = frame_payloads(metadata())
    assert len(payloads) == 2
    for i, payload in enumerate(payloads):
        check_message(json.loads(payload), i)


def test_messages_arrive_in_a_redis_stream(redis_url: str) -> None:
    url = urlparse(redis_url)
    sink = BrokerSink.from_sink("sink2", sink_config("redis", f"{url.hostname};{url.port}"))
    sink.write(None, [metadata(), metadata(frame_number=43, objects=0)])
    sink.close()
    messages = stream_messages(redis_url, "heron-test")
    assert len(messages) == 2 and sink.messages == 2
    for i, message in enumerate(messages):
        check_message(message, i)


def test_redis_payload_key_and_stream_size_come_from_the_config_file(
    redis_url: str, tmp_path: Path
) -> None:
    url = urlparse(redis_url)
    cfg = tmp_path / "cfg_redis.txt"
    cfg.write_text(f"[message-broker]\nhostname={url.hostname}\nport={url.port}\n"
                   "payloadkey=payload\nstreamsize=5\n")  # fmt: skip
    sink = BrokerSink.from_sink("sink2", sink_config("redis", None, msg_broker_config=cfg))
    for n in range(0, 300, 1):
        sink.write(None, [metadata(frame_number=n, objects=1)])
    sink.close()
    assert redis.Redis.from_url(redis_url).xlen("heron-test") < 300  # MAXLEN ~ trims whole nodes
    assert len(stream_messages(redis_url, "heron-test", b"payload")) > 0


def test_frame_interval_sends_every_nth_frame(redis_url: str) -> None:
    url = urlparse(redis_url)
    config = sink_config("redis", f"{url.hostname};{url.port}").model_copy(
        update={"msg_conv_frame_interval": 30}
    )
    sink = BrokerSink.from_sink("sink2", config)
    sink.write(None, [metadata(frame_number=n, objects=1) for n in range(61)])
    sink.close()
    numbers = [m["frameNumber"] for m in stream_messages(redis_url, "heron-test")]
    assert numbers == [0, 30, 60]


@pytest.mark.skipif(not reachable(1883), reason="no MQTT broker (Mosquitto) on 127.0.0.1:1883")
def test_messages_arrive_over_mqtt() -> None:
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    topic = f"heron/test/{uuid.uuid4().hex}"
    got: list[bytes] = []
    subscribed = threading.Event()
    client = mqtt.Client(CallbackAPIVersion.VERSION2)
    client.on_subscribe = lambda *_: subscribed.set()
    client.on_message = lambda _c, _u, msg: got.append(bytes(msg.payload))
    client.connect("127.0.0.1", 1883)
    client.subscribe(topic, qos=1)
    client.loop_start()
    try:
        assert subscribed.wait(5)
        sink = BrokerSink.from_sink("sink2", sink_config("mqtt", "127.0.0.1;1883;", topic))
        sink.write(None, [metadata()])
        sink.close()
        deadline = time.monotonic() + 5
        while len(got) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        client.loop_stop()
        client.disconnect()
    assert len(got) == 2
    for i, payload in enumerate(sorted(got, key=lambda p: json.loads(p)["object"]["classId"])):
        check_message(json.loads(payload), i)


@pytest.mark.skipif(not reachable(5672), reason="no AMQP broker (RabbitMQ) on 127.0.0.1:5672")
def test_messages_arrive_over_amqp() -> None:
    import pika  # type: ignore[import-untyped,unused-ignore]

    topic = f"heron.test.{uuid.uuid4().hex}"
    connection = pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1", 5672))
    channel = connection.channel()
    queue = channel.queue_declare("", exclusive=True).method.queue
    channel.queue_bind(queue, "amq.topic", routing_key=topic)
    try:
        sink = BrokerSink.from_sink("sink2", sink_config("amqp", "127.0.0.1;5672;guest", topic))
        sink.write(None, [metadata()])
        sink.close()
        got: list[bytes] = []
        deadline = time.monotonic() + 5
        while len(got) < 2 and time.monotonic() < deadline:
            _, props, body = channel.basic_get(queue, auto_ack=True)
            if body is None:
                time.sleep(0.02)
                continue
            assert props.content_type == "application/json"
            got.append(body)
    finally:
        connection.close()
    assert len(got) == 2
    for i, payload in enumerate(got):
        check_message(json.loads(payload), i)


def test_kafka_adapter_builds_a_producer_from_deepstream_keys() -> None:
    broker = MessageBroker(proto_cfg="message.timeout.ms=1000;acks=all",
                           partition_key="sensor.id")  # fmt: skip
    options = resolve("[sink2]", "127.0.0.1;9;heron-kafka", None, None, broker, 9092,
                      extra_is_topic=True)  # fmt: skip
    assert options.topic == "heron-kafka"  # old DeepStream configs put the topic third
    adapter = KafkaAdapter(options)
    assert adapter.partition_key == "sensor.id"
    adapter.close()  # nothing queued: returns without a broker
    assert record_key(frame_payloads(metadata())[0], "sensor.id") == b"cam-1"
    assert record_key(b"{}", "sensor.id") is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [("a=1;b=2", {"a": "1", "b": "2"}), ("", {}), (None, {}), (" a = 1 ;", {"a": "1"})],
)
def test_librdkafka_options_parse(text: str | None, expected: dict[str, str]) -> None:
    assert librdkafka_options(text, "k") == expected


@pytest.mark.parametrize("text", ["acks", "=1", "a=1;junk"])
def test_malformed_librdkafka_options_are_refused(text: str) -> None:
    with pytest.raises(SinkConfigError, match="proto-cfg: expected 'key=value;key=value'"):
        librdkafka_options(text, "[sink2]")


@pytest.mark.parametrize(
    ("value", "host", "port", "extra"),
    [("localhost;6379", "localhost", 6379, None), ("10.0.0.1;9092;topic", "10.0.0.1", 9092,
     "topic"), (" h ; 1883 ; ", "h", 1883, None)],
)  # fmt: skip
def test_conn_str_parses(value: str, host: str, port: int, extra: str | None) -> None:
    e = parse_conn_str(value, "[sink2]")
    assert (e.host, e.port, e.extra) == (host, port, extra)


@pytest.mark.parametrize(
    ("value", "message"),
    [("localhost", "expected 'host;port'"), (";6379", "expected 'host;port'"),
     ("h;p", "expected a port 1-65535 after the host, got 'p'"),
     ("h;70000", "got '70000'"), ("a;1;b;c", "expected 'host;port'")],
)  # fmt: skip
def test_malformed_conn_str_is_refused(value: str, message: str) -> None:
    with pytest.raises(SinkConfigError, match=rf"\[sink2\] msg-broker-conn-str: .*{message}"):
        parse_conn_str(value, "[sink2]")


@pytest.mark.parametrize(
    ("config", "message"),
    [(sink_config("zmq", "h;1"), "msg-broker-proto-lib: expected one of libnvds_redis_proto.so"
      ".*got 'libnvds_zmq_proto.so'"),
     (sink_config("redis", "h;1", topic=None), "topic: expected the topic messages go to"),
     (sink_config("redis", None), "expected msg-broker-conn-str .* got neither")],
)  # fmt: skip
def test_bad_broker_sinks_are_refused(config: MsgBrokerSink, message: str) -> None:
    with pytest.raises(SinkConfigError, match=message):
        BrokerSink.from_sink("sink2", config)


@pytest.mark.parametrize(
    ("text", "message"),
    [("[other]\nport=1\n", "expected a \\[message-broker\\] group"),
     ("[message-broker]\nport=notaport\n", r"cfg.txt:2: \[message-broker\] port: .*'notaport'"),
     ("[message-broker]\nbogus-key=1\n", r"cfg.txt:2: \[message-broker\] bogus-key")],
)  # fmt: skip
def test_bad_broker_config_files_name_file_and_line(
    tmp_path: Path, text: str, message: str
) -> None:
    cfg = tmp_path / "cfg.txt"
    cfg.write_text(text)
    with pytest.raises(SinkConfigError, match=message):
        BrokerSink.from_sink("sink2", sink_config("redis", None, msg_broker_config=cfg))


def test_adapters_are_chosen_by_library_file_name() -> None:
    names = {
        p: adapter_kind(Path(LIB.format(p)), "x")[0] for p in ("redis", "mqtt", "kafka", "amqp")
    }
    assert names == {"redis": "redis", "mqtt": "mqtt", "kafka": "kafka", "amqp": "amqp"}


def test_a_redis_broker_that_is_down_fails_the_write_quickly() -> None:
    port = free_port()  # nothing listens there
    sink = BrokerSink.from_sink("sink2", sink_config("redis", f"127.0.0.1;{port}"))
    started = time.monotonic()
    with pytest.raises(BrokerError, match=rf"redis://127.0.0.1:{port} stream 'heron-test'"):
        sink.write(None, [metadata()])
    assert time.monotonic() - started < 10  # well inside the overlay's liveness timeout
    sink.close()


def test_an_mqtt_broker_that_is_down_fails_at_start() -> None:
    port = free_port()
    with pytest.raises(BrokerError, match=rf"mqtt://127.0.0.1:{port} .*cannot connect"):
        BrokerSink.from_sink("sink2", sink_config("mqtt", f"127.0.0.1;{port}"))


@pytest.mark.skipif(not reachable(5672), reason="no AMQP broker (RabbitMQ) on 127.0.0.1:5672")
def test_amqp_login_failure_names_the_broker_and_hides_the_password(tmp_path: Path) -> None:
    cfg = tmp_path / "cfg_amqp.txt"
    cfg.write_text("[message-broker]\nusername=heron-nobody\npassword=s3cret-pw\n")
    config = sink_config("amqp", "127.0.0.1;5672", msg_broker_config=cfg)
    with pytest.raises(BrokerError, match=r"amqp://heron-nobody@127\.0\.0\.1:5672") as caught:
        BrokerSink.from_sink("sink2", config)
    assert "s3cret-pw" not in str(caught.value)
