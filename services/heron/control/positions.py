"""A subscriber's position as text: `<entry id>:<number>`, e.g. `1733590000000-0:42`.

The entry id says where in the stream to continue; the number (the entry's count in the
stream's history, heron.core.bus.tail) lets the server say exactly how many frames a
subscriber lost when the stream was trimmed past its position. Clients treat it as opaque.
"""

from __future__ import annotations

from heron.core.bus import Cursor
from heron.core.bus.ids import parse_id

EXAMPLE = "1733590000000-0:42"


def position_text(cursor: Cursor) -> str:
    return f"{cursor.id}:{cursor.number}"


def parse_position(text: str) -> Cursor:
    """The cursor of a position a DetectionEvent carried; ValueError saying what was expected."""
    entry_id, sep, number = text.partition(":")
    expected = f"expected a position from a DetectionEvent, such as {EXAMPLE!r}"
    if not sep or not number.isdigit():
        raise ValueError(f"{expected}, got {text!r:.80}")
    try:
        parse_id(entry_id)
    except ValueError:
        raise ValueError(f"{expected}, got {text!r:.80}") from None
    return Cursor(entry_id, int(number))
