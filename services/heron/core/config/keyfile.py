"""A GLib key-file reader that keeps line numbers (deepstream-app and nvinfer configs).

GLib's own parser (`g_key_file_load_from_file`) stops at the first bad line and forgets where
each value came from; this one follows the same rules but reports every bad line through
`Diagnostics` and remembers the line of every group and key, so later stages can point at them.

Rules followed from GLib: `[group]` headers; `key=value` with spaces around `=` trimmed; lines
whose first non-blank character is `#` are comments; a key before any group is an error; a
repeated key keeps the later value; a repeated group is merged into the first one. Added for
DeepStream's real files: a `#` preceded by white space ends the value (`width=1280 #640`), since
GLib's integer parser stops there anyway and users write such comments everywhere.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from heron.core.config.diagnostics import Diagnostics

_GROUP = re.compile(r"\[([^\[\]]*)\]")
_GROUP_START = re.compile(r"\[[^\[\]]+\]")
_INLINE_COMMENT = re.compile(r"\s+#.*$")
_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class Entry:
    """One `key=value` line; `value` has its inline comment and outer spaces removed."""

    key: str
    value: str
    line: int


@dataclass
class Group:
    name: str
    line: int
    entries: dict[str, Entry] = field(default_factory=dict)


@dataclass
class KeyFile:
    path: Path
    groups: dict[str, Group] = field(default_factory=dict)

    def group_line(self, name: str) -> int:
        group = self.groups.get(name)
        return group.line if group else 0


def read_keyfile(path: Path, diags: Diagnostics) -> KeyFile:
    """Parse the file at `path`; unreadable files give an error and an empty KeyFile."""
    try:
        data = path.read_bytes()
    except OSError as e:
        diags.error(path, 0, f"cannot read the file: {e.strerror or e}")
        return KeyFile(path)
    return parse_keyfile(data, path, diags)


def parse_keyfile(data: bytes, path: Path, diags: Diagnostics) -> KeyFile:
    """Parse key-file bytes, reporting every malformed line instead of stopping at the first."""
    keyfile = KeyFile(path)
    current: Group | None = None
    data = data.removeprefix(_BOM)
    for number, raw in enumerate(data.split(b"\n"), start=1):
        line = _decode(raw, path, number, diags).strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            current = _open_group(keyfile, line, number, diags)
        elif current is None:
            diags.error(path, number, f"key before any [group]: {line!r}")
        else:
            _add_entry(current, line, path, number, diags)
    return keyfile


def malformed_header_message(line: str) -> str:
    """Why a line starting with '[' is no group header, in GLib's words plus the likely fix."""
    glib = f"line {line!r} is not a key-value pair, group or comment"
    if "]" not in line:
        return f"malformed group header: {glib}; a group header needs its closing ']'"
    if _GROUP_START.match(line) and not line.rstrip().endswith("]"):
        return f"malformed group header: {glib}; nothing may follow the closing ']'"
    return f"malformed group header: {glib}; expected '[name]'"


def split_list(value: str) -> list[str]:
    """GLib list syntax: items separated by ';', one trailing ';' allowed ('1;2;' = ['1','2'])."""
    text = value.strip()
    if text.endswith(";"):
        text = text[:-1]
    if not text:
        return []
    return [item.strip() for item in text.split(";")]


def _decode(raw: bytes, path: Path, number: int, diags: Diagnostics) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        diags.error(
            path,
            number,
            f"line is not valid UTF-8 (byte 0x{raw[e.start]:02x} at column {e.start + 1}); "
            "key files must be UTF-8",
        )
        return raw.decode("utf-8", "replace")


def _open_group(keyfile: KeyFile, line: str, number: int, diags: Diagnostics) -> Group:
    match = _GROUP.fullmatch(line)
    if match is None or not match.group(1).strip():
        diags.error(keyfile.path, number, malformed_header_message(line))
        return Group("", number)  # keys up to the next header land here and are dropped
    name = match.group(1).strip()
    existing = keyfile.groups.get(name)
    if existing is not None:
        diags.warn(
            keyfile.path,
            number,
            f"group [{name}] appears again (first at line {existing.line}); "
            "its keys are merged into the first, as GLib does",
        )
        return existing
    group = Group(name, number)
    keyfile.groups[name] = group
    return group


def _add_entry(group: Group, line: str, path: Path, number: int, diags: Diagnostics) -> None:
    key, sep, value = line.partition("=")
    key = key.strip()
    if not sep:
        diags.error(
            path, number, f"expected 'key=value', '[group]' or a '#' comment; found {line!r}"
        )
        return
    if not key:
        diags.error(path, number, f"missing key name before '=' in {line!r}")
        return
    value = _INLINE_COMMENT.sub("", value.strip()).strip()
    earlier = group.entries.get(key)
    if earlier is not None:
        diags.warn(
            path,
            number,
            f"duplicate key {key!r} in [{group.name}] (first at line {earlier.line}); "
            "the later value wins, as in GLib",
            f"{group.name}.{key}",
        )
    group.entries[key] = Entry(key, value, number)
