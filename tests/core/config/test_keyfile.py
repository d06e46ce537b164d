"""The GLib key-file reader: groups, keys, lines, comments and lists."""

from __future__ import annotations

from pathlib import Path

import pytest
from heron.core.config.diagnostics import Diagnostics
from heron.core.config.keyfile import parse_keyfile, split_list

SAMPLE = b"""\xef\xbb\xbf# leading comment
[tiled-display]
enable=1
  rows = 2
width=1280 #640
uri=rtsp://cam/stream#frag

[source0]
# type=3
type=1
"""


def test_groups_keys_and_lines_are_kept() -> None:
    diags = Diagnostics()
    keyfile = parse_keyfile(SAMPLE, Path("x.txt"), diags)

    assert diags.items == []
    assert list(keyfile.groups) == ["tiled-display", "source0"]
    tiled = keyfile.groups["tiled-display"]
    assert tiled.line == 2
    assert {k: (e.value, e.line) for k, e in tiled.entries.items()} == {
        "enable": ("1", 3),
        "rows": ("2", 4),
        "width": ("1280", 5),  # the inline comment is not part of the value
        "uri": ("rtsp://cam/stream#frag", 6),  # a '#' inside a value stays
    }
    assert keyfile.groups["source0"].entries["type"].value == "1"


def test_repeated_key_keeps_the_later_value_and_warns() -> None:
    diags = Diagnostics()
    keyfile = parse_keyfile(b"[a]\nx=1\nx=2\n", Path("x.txt"), diags)

    assert keyfile.groups["a"].entries["x"].value == "2"
    assert [(d.line, d.field) for d in diags.warnings] == [(3, "a.x")]


def test_repeated_group_is_merged() -> None:
    diags = Diagnostics()
    keyfile = parse_keyfile(b"[a]\nx=1\n[b]\n[a]\ny=2\n", Path("x.txt"), diags)

    assert set(keyfile.groups["a"].entries) == {"x", "y"}
    assert diags.warnings[0].line == 4


def test_keys_under_a_malformed_header_are_dropped_without_more_errors() -> None:
    diags = Diagnostics()
    keyfile = parse_keyfile(b"[a\nx=1\n[b]\ny=2\n", Path("x.txt"), diags)

    assert list(keyfile.groups) == ["b"]
    assert [d.line for d in diags.errors] == [1]


@pytest.mark.parametrize(
    ("value", "items"),
    [
        ("3;544;960;0", ["3", "544", "960", "0"]),
        ("1;1;1;1;", ["1", "1", "1", "1"]),  # GLib allows one trailing ';'
        ("a; b ;c", ["a", "b", "c"]),
        ("single", ["single"]),
        ("", []),
        ("1;;2", ["1", "", "2"]),  # an empty item is kept, for the type check to refuse
    ],
)
def test_split_list(value: str, items: list[str]) -> None:
    assert split_list(value) == items
