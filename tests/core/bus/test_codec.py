"""The stream-entry layout of a message: round trip, and every way an entry can be malformed."""

from __future__ import annotations

import pytest
from google.protobuf.message import Message
from heron.core.bus import DeadLetterReason, UndecodableMessageError
from heron.core.bus.codec import PB_FIELD, TIME_FIELD, TYPE_FIELD, decode, encode
from heron.v1.bus_pb2 import DeadLetter
from heron.v1.detection_pb2 import BoundingBox, DetectedObject, FrameMetadata
from heron.v1.frame_pb2 import FrameRef, SharedMemorySlot
from heron.v1.stream_pb2 import StreamEvent

FRAME = FrameRef(
    stream_id="cam0",
    frame_number=7,
    width=640,
    height=480,
    shm=SharedMemorySlot(segment="heron-cam0", slot=3, offset=921600, size=921600),
)
META = FrameMetadata(
    frame=FRAME,
    objects=[DetectedObject(bbox=BoundingBox(left=1, top=2, width=3, height=4), label="mask")],
    model_name="detectnet",
)


@pytest.mark.parametrize("message", [FRAME, META, StreamEvent(stream_id="cam0"), DeadLetter()])
def test_round_trip_keeps_message_and_publish_time(message: Message) -> None:
    fields = encode(message, now_ns=1_700_000_000_123_456_789)

    decoded = decode(fields, type(message))

    assert decoded.message == message
    assert decoded.published_ns == 1_700_000_000_123_456_789
    assert fields[TYPE_FIELD] == message.DESCRIPTOR.full_name.encode()


def test_headers_are_optional() -> None:
    decoded = decode({PB_FIELD: FRAME.SerializeToString()}, FrameRef)

    assert decoded.message == FRAME
    assert decoded.published_ns is None


@pytest.mark.parametrize(
    ("fields", "reason", "says"),
    [
        ({}, DeadLetterReason.MISSING_FIELD, "fields present: none"),
        ({b"data": b"x"}, DeadLetterReason.MISSING_FIELD, "fields present: 'data'"),
        (
            {PB_FIELD: FRAME.SerializeToString(), TYPE_FIELD: b"heron.v1.StreamEvent"},
            DeadLetterReason.WRONG_TYPE,
            "type header is 'heron.v1.StreamEvent', expected 'heron.v1.FrameRef'",
        ),
        ({PB_FIELD: b"\xff\xff\xff"}, DeadLetterReason.BAD_PROTOBUF, "3 bytes in field 'pb'"),
        (
            {PB_FIELD: b"\x0a\x05ab"},  # field 1 says 5 bytes follow, 2 do
            DeadLetterReason.BAD_PROTOBUF,
            "do not parse as heron.v1.FrameRef",
        ),
        (
            {PB_FIELD: b"", TIME_FIELD: b"yesterday"},
            DeadLetterReason.BAD_HEADER,
            "ts header is 'yesterday', expected integer nanoseconds",
        ),
        ({PB_FIELD: b"", TIME_FIELD: b"-5"}, DeadLetterReason.BAD_HEADER, "ts header is '-5'"),
    ],
)
def test_malformed_entry_names_the_problem(
    fields: dict[bytes, bytes], reason: DeadLetterReason, says: str
) -> None:
    with pytest.raises(UndecodableMessageError) as raised:
        decode(fields, FrameRef)

    assert raised.value.reason is reason
    assert says in str(raised.value)
    assert str(raised.value).startswith(reason.value)
