"""Reading TAO spec content written as YAML, with errors that point at lines.

The YAML form has the same field names as the text form. Map fields (target_class_mapping,
target_class_config, ...) may be written as a YAML mapping (`mask: {...}`) or, as in text format,
as a list of `{key: ..., value: ...}`. The node tree is walked against the message descriptors
so every problem carries the line of its YAML node; the checked plain data then goes through
`json_format.ParseDict`, protobuf's own converter.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import yaml
from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from heron.core.config.diagnostics import Diagnostics, closest
from heron.core.config.tao.paths import (
    SECRET_FIELDS,
    FieldLines,
    child,
    descriptor_of,
    indexed,
    keyed,
)
from heron.core.config.tao.text_format import KNOWN_MISTAKES

_FD = FieldDescriptor
_INTS = {_FD.TYPE_INT32, _FD.TYPE_INT64, _FD.TYPE_SINT32, _FD.TYPE_SINT64, _FD.TYPE_SFIXED32}
_INTS |= {_FD.TYPE_SFIXED64}
_UINTS = {_FD.TYPE_UINT32, _FD.TYPE_UINT64, _FD.TYPE_FIXED32, _FD.TYPE_FIXED64}
_FLOATS = {_FD.TYPE_FLOAT, _FD.TYPE_DOUBLE}
_NULL = "tag:yaml.org,2002:null"


class _InvalidValueError(Exception):
    """One bad value; caught where the field is known, turned into a diagnostic."""

    def __init__(self, node: yaml.Node, message: str) -> None:
        super().__init__(message)
        self.node = node


def compose(text: str, source: Path, diags: Diagnostics) -> yaml.Node | None:
    """The YAML node tree, or None after reporting a syntax error with its line."""
    try:
        return yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark is not None else 0
        what = " ".join(p for p in (e.context, e.problem) if p)
        diags.error(source, line, f"YAML syntax error: {what}")
    except yaml.YAMLError as e:
        diags.error(source, 0, f"YAML syntax error: {e}")
    return None


def top_level_names(node: yaml.Node | None) -> list[str]:
    if not isinstance(node, yaml.MappingNode):
        return []
    return [str(k.value) for k, _ in node.value]


def parse_yaml(
    node: yaml.Node | None, message: Message, source: Path, diags: Diagnostics
) -> FieldLines:
    """Fill `message` from a composed YAML document; problems go to `diags` with their lines."""
    lines = FieldLines()
    if node is None or (node.tag == _NULL):
        diags.error(source, 0, "the file is empty: expected a mapping of spec sections")
        return lines
    walker = _Walker(source, diags, lines)
    data = walker.message(node, descriptor_of(message), "")
    if diags.errors:
        return lines
    try:
        json_format.ParseDict(data, message)
    except json_format.ParseError as e:  # not expected after the walk; reported, never hidden
        diags.error(source, 0, f"could not convert the YAML content: {e}")
    return lines


class _Walker:
    def __init__(self, source: Path, diags: Diagnostics, lines: FieldLines) -> None:
        self.source = source
        self.diags = diags
        self.lines = lines
        self.constructor = yaml.constructor.SafeConstructor()

    def error(self, node: yaml.Node, message: str, path: str) -> None:
        self.diags.error(self.source, node.start_mark.line + 1, message, path)

    def message(self, node: yaml.Node, desc: Descriptor, path: str) -> dict[str, Any]:
        if node.tag == _NULL:
            return {}  # `cov:` with nothing after it is an empty message, like `cov {}`
        if not isinstance(node, yaml.MappingNode):
            self.error(node, f"expected a mapping of {desc.name} fields, got {_kind(node)}", path)
            return {}
        out: dict[str, Any] = {}
        oneofs: dict[str, str] = {}
        for key_node, value_node in node.value:
            name = str(key_node.value)
            at = child(path, name)
            self.lines.record(at, key_node.start_mark.line + 1)
            fd = self.field(key_node, desc, path, seen=out, oneofs=oneofs)
            if fd is None:
                continue
            try:
                out[name] = self.value(value_node, fd, at)
            except _InvalidValueError as e:
                self.error(e.node, f"{name}: {e}", at)
        return out

    def field(
        self,
        key_node: yaml.Node,
        desc: Descriptor,
        path: str,
        *,
        seen: dict[str, Any],
        oneofs: dict[str, str],
    ) -> FieldDescriptor | None:
        """The field a key names, or None after reporting an unknown, repeated or clashing one."""
        name = str(key_node.value)
        at = child(path, name)
        fd = desc.fields_by_name.get(name)
        if fd is None:
            where = f" in {path}" if path else " at the top level"
            hint = KNOWN_MISTAKES.get(name)
            if hint is None:
                guess = closest(name, desc.fields_by_name)
                hint = (
                    f"did you mean {guess!r}?"
                    if guess
                    else "valid fields: " + ", ".join(sorted(desc.fields_by_name))
                )
            self.error(key_node, f"unknown field {name!r}{where}; {hint}", at)
            return None
        if name in seen:
            self.error(key_node, f"field {name!r} is given twice", at)
            return None
        group = fd.containing_oneof
        if group is not None and not group.name.startswith("_"):
            if group.name in oneofs:
                other = oneofs[group.name]
                self.error(
                    key_node, f"{name!r} and {other!r} exclude each other (oneof {group.name})", at
                )
                return None
            oneofs[group.name] = name
        return fd

    def value(self, node: yaml.Node, fd: FieldDescriptor, path: str) -> Any:
        entry = fd.message_type
        if entry is not None and entry.GetOptions().map_entry:
            return self.map(node, entry, path)
        if fd.is_repeated:
            items = node.value if isinstance(node, yaml.SequenceNode) else [node]
            out = []
            for i, item in enumerate(items):
                at = indexed(path, i)
                self.lines.record(at, item.start_mark.line + 1)
                out.append(self.single(item, fd, at))
            return out
        return self.single(node, fd, path)

    def single(self, node: yaml.Node, fd: FieldDescriptor, path: str) -> Any:
        if fd.message_type is not None:
            return self.message(node, fd.message_type, path)
        return self.scalar(node, fd)

    def map(self, node: yaml.Node, entry: Descriptor, path: str) -> dict[str, Any]:
        """`{k: v, ...}` or text-format style `[{key: k, value: v}, ...]`."""
        value_fd = entry.fields_by_name["value"]
        pairs: list[tuple[yaml.Node, yaml.Node | None]] = []
        if isinstance(node, yaml.MappingNode):
            pairs = list(node.value)
        elif isinstance(node, yaml.SequenceNode):
            pairs = [self.key_value(item, path) for item in node.value]
        elif node.tag != _NULL:
            raise _InvalidValueError(
                node, f"expected a mapping (or a list of key/value), got {_kind(node)}"
            )
        out: dict[str, Any] = {}
        for key_node, value_node in pairs:
            key = str(self.constructor.construct_object(key_node))
            at = keyed(path, key)
            self.lines.record(at, key_node.start_mark.line + 1)
            if value_node is None:
                raise _InvalidValueError(key_node, f"entry {key!r} has no value")
            try:
                out[key] = self.single(value_node, value_fd, at)
            except _InvalidValueError as e:
                self.error(e.node, f"[{key!r}]: {e}", at)
        return out

    def key_value(self, item: yaml.Node, path: str) -> tuple[yaml.Node, yaml.Node | None]:
        fields = (
            dict((str(k.value), v) for k, v in item.value)
            if isinstance(item, yaml.MappingNode)
            else {}
        )
        extra = sorted(set(fields) - {"key", "value"})
        if "key" not in fields or extra:
            raise _InvalidValueError(
                item, "a list entry of a map needs exactly `key:` and `value:`"
            )
        return fields["key"], fields.get("value")

    def scalar(self, node: yaml.Node, fd: FieldDescriptor) -> Any:
        if not isinstance(node, yaml.ScalarNode) or node.tag == _NULL:
            raise _InvalidValueError(node, f"expected {_expected(fd)}, got {_kind(node)}")
        value = self.constructor.construct_object(node)
        if fd.type == _FD.TYPE_ENUM:
            return _enum(node, value, fd)
        if fd.type == _FD.TYPE_BOOL:
            if isinstance(value, bool):
                return value
        elif fd.type in _INTS or fd.type in _UINTS:
            if isinstance(value, int) and not isinstance(value, bool):
                if fd.type in _UINTS and value < 0:
                    raise _InvalidValueError(node, f"expected {_expected(fd)}, got {value}")
                return value
        elif fd.type in _FLOATS:
            number = _float(value)
            if number is not None:
                return number
        elif fd.type == _FD.TYPE_STRING and isinstance(value, str):
            return value
        shown = "(not shown: a secret)" if fd.full_name in SECRET_FIELDS else repr(node.value)
        raise _InvalidValueError(node, f"expected {_expected(fd)}, got {_kind(node)} {shown}")


def _float(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        # YAML 1.1 reads `5e-06` (no dot) as a string; TAO specs are full of such numbers.
        try:
            number = float(value)
        except ValueError:
            return None
        return number if not math.isnan(number) or value.lower() == "nan" else None
    return None


def _enum(node: yaml.Node, value: object, fd: FieldDescriptor) -> str:
    enum = fd.enum_type
    if enum is None:
        raise _InvalidValueError(node, "not an enum field")
    names = [v.name for v in enum.values]
    if isinstance(value, str) and value in names:
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        by_number = enum.values_by_number.get(value)
        if by_number is not None:
            return str(by_number.name)
    guess = closest(str(value), names)
    hint = f" (did you mean {guess!r}?)" if guess else ""
    raise _InvalidValueError(node, f"{value!r} is not one of {', '.join(names)}{hint}")


def _expected(fd: FieldDescriptor) -> str:
    if fd.type in _UINTS:
        return "a non-negative integer"
    if fd.type in _INTS:
        return "an integer"
    if fd.type in _FLOATS:
        return "a number"
    if fd.type == _FD.TYPE_BOOL:
        return "true or false"
    if fd.type == _FD.TYPE_STRING:
        return "a string"
    return fd.type_name if hasattr(fd, "type_name") else "a value"


def _kind(node: yaml.Node) -> str:
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    if node.tag == _NULL:
        return "nothing"
    return node.tag.rsplit(":", 1)[-1]
