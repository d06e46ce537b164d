"""Property: any stream entry, however malformed, either decodes or is refused with the bus's
own UndecodableMessageError (which dead-letters it with a reason); nothing else escapes."""

from __future__ import annotations

import pytest
from google.protobuf.message import Message
from heron.core.bus import DeadLetterReason, UndecodableMessageError
from heron.core.bus.codec import PB_FIELD, TIME_FIELD, TYPE_FIELD, decode, encode
from heron.v1.detection_pb2 import FrameMetadata
from heron.v1.frame_pb2 import FrameRef
from heron.v1.stream_pb2 import StreamEvent
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

CLASSES: list[type[Message]] = [FrameRef, FrameMetadata, StreamEvent]
# database=None: nothing is written into the checkout (.hypothesis/).
SETTINGS = settings(
    max_examples=100, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)

# Field names the codec knows, and any others; values: bytes, and the text forms of headers.
NAMES = st.one_of(st.sampled_from([PB_FIELD, TYPE_FIELD, TIME_FIELD]), st.binary(max_size=8))
HEADER_VALUES = st.one_of(
    st.binary(max_size=64),
    st.integers(min_value=-(10**30), max_value=10**30).map(lambda n: str(n).encode()),
    st.text(max_size=30).map(str.encode),
    st.sampled_from([c.DESCRIPTOR.full_name.encode() for c in CLASSES]),
    st.just(b"9" * 5000),  # more digits than int() parses
)


def _decodes_or_is_refused(fields: dict[bytes, bytes], message_class: type[Message]) -> None:
    try:
        decoded = decode(fields, message_class)
    except UndecodableMessageError as e:
        assert isinstance(e.reason, DeadLetterReason)
        assert str(e).strip()
        return
    assert isinstance(decoded.message, message_class)
    assert decoded.published_ns is None or decoded.published_ns >= 0


@SETTINGS
@given(st.dictionaries(NAMES, HEADER_VALUES, max_size=5), st.sampled_from(CLASSES))
def test_any_entry_decodes_or_is_refused(
    fields: dict[bytes, bytes], message_class: type[Message]
) -> None:
    _decodes_or_is_refused(fields, message_class)


@SETTINGS
@given(
    st.sampled_from(CLASSES),
    st.binary(max_size=256),
    st.one_of(st.none(), HEADER_VALUES),
    st.one_of(st.none(), HEADER_VALUES),
)
def test_any_payload_and_headers_decode_or_are_refused(
    message_class: type[Message], payload: bytes, type_header: bytes | None, ts: bytes | None
) -> None:
    fields = {PB_FIELD: payload}
    if type_header is not None:
        fields[TYPE_FIELD] = type_header
    if ts is not None:
        fields[TIME_FIELD] = ts
    _decodes_or_is_refused(fields, message_class)


@SETTINGS
@given(st.binary(max_size=64), st.integers(min_value=0, max_value=2**63 - 1))
def test_a_valid_entry_with_a_damaged_payload_is_refused_or_decoded(
    garbage: bytes, now_ns: int
) -> None:
    """A real entry whose payload has bytes appended: protobuf may still read it (unknown or
    repeated fields), or it is refused as BAD_PROTOBUF; either way never another error."""
    fields = encode(FrameRef(stream_id="source-0", frame_number=3, width=64, height=32), now_ns)
    fields[PB_FIELD] += garbage
    _decodes_or_is_refused(fields, FrameRef)


def test_a_timestamp_longer_than_any_int64_is_a_bad_header() -> None:
    fields = {PB_FIELD: b"", TIME_FIELD: b"9" * 5000}
    with pytest.raises(UndecodableMessageError) as raised:
        decode(fields, FrameRef)
    assert raised.value.reason is DeadLetterReason.BAD_HEADER
