"""Reading TAO spec files in protobuf text format, with errors that point at lines.

protobuf's own parser does the parsing (`text_format.Parse`). Before it runs, a small
schema-aware scan walks the same text to learn three things the parser does not report well:
the line of every field (for semantic checks), every unknown field at once (the parser stops at
the first) with the closest valid name, and the opening line of a block that is never closed
(the parser only says `Expected "}"` somewhere near the end).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from google.protobuf import descriptor_pool, empty_pb2, text_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from heron.core.config.diagnostics import Diagnostics, closest
from heron.core.config.tao.paths import (
    FieldLines,
    child,
    descriptor_of,
    indexed,
    is_secret_path,
    keyed,
)

# Names users carry over from other TAO networks' specs, with what DetectNet_v2 uses instead.
KNOWN_MISTAKES = {
    "pruned_model_path": (
        "DetectNet_v2 retrains a pruned model with pretrained_model_file pointing at it and "
        "load_graph: true"
    ),
}

_TOKEN = re.compile(
    r"""(?P<ws>[ \t\r\f\v]+)|(?P<nl>\n)|(?P<comment>\#[^\n]*)
    |(?P<string>"(?:[^"\\\n]|\\.)*"?|'(?:[^'\\\n]|\\.)*'?)
    |(?P<punct>[{}<>:;,\[\]])|(?P<word>[^\s{}<>:;,\[\]"'\#]+)""",
    re.VERBOSE,
)


@dataclass(frozen=True)
class Token:
    kind: str  # "string", "punct" or "word"
    text: str
    line: int


def tokens(text: str) -> Iterator[Token]:
    line = 1
    for m in _TOKEN.finditer(text):
        kind = m.lastgroup or ""
        if kind == "nl":
            line += 1
        elif kind in ("string", "punct", "word"):
            yield Token(kind, m.group(), line)


@dataclass
class _Frame:
    """One `{ ... }` block being read: which message it is and where its fields go."""

    descriptor: Descriptor | None  # None below an unknown field, or when scanning schemaless
    path: str
    line: int
    name: str
    closer: str
    map_entry: bool = False
    map_path: str = ""  # for a map entry: the map field's path, which the entry's key extends
    seen: dict[str, int] = field(default_factory=dict)
    # Inside `name: [ {...}, {...} ]`: the field whose list of messages is being read.
    in_list: tuple[str, FieldDescriptor | None] | None = None


@dataclass
class TextScan:
    lines: FieldLines = field(default_factory=FieldLines)
    top_level: list[str] = field(default_factory=list)
    unknown: list[tuple[int, str, str, list[str]]] = field(default_factory=list)
    unclosed: _Frame | None = None


class _Scanner:
    """Walks the token stream with a stack of frames; tolerant of anything the parser rejects."""

    def __init__(self, text: str, root: Descriptor | None) -> None:
        self.text_lines = text.split("\n")
        self.toks = list(tokens(text))
        # The first block whose `}` sits left of where the block started: when a brace is
        # missing, the braces after it pair up wrongly, and indentation shows where it went.
        self.suspect: _Frame | None = None
        self.pos = 0
        self.scan = TextScan()
        self.stack = [_Frame(root, "", 0, "", "")]

    def peek(self, offset: int = 0) -> Token | None:
        i = self.pos + offset
        return self.toks[i] if i < len(self.toks) else None

    def run(self) -> TextScan:
        while (tok := self.peek()) is not None:
            self.pos += 1
            frame = self.stack[-1]
            if tok.kind == "word" and frame.in_list is None:
                self.field(tok)
            elif tok.text in ("{", "<") and frame.in_list is not None:
                name, fd = frame.in_list
                self.open(frame, fd, name, tok.line, "}" if tok.text == "{" else ">")
            elif tok.text == "]":
                frame.in_list = None
            elif tok.text in ("}", ">") and len(self.stack) > 1:
                closed = self.stack.pop()
                if self.suspect is None and self.indent(tok.line) < self.indent(closed.line):
                    self.suspect = closed
        if len(self.stack) > 1:
            self.scan.unclosed = self.suspect or self.stack[-1]
        return self.scan

    def indent(self, line: int) -> int:
        text = self.text_lines[line - 1]
        return len(text) - len(text.lstrip())

    def field(self, name_tok: Token) -> None:
        frame = self.stack[-1]
        name = name_tok.text
        fd = self.lookup(frame, name, name_tok.line)
        if len(self.stack) == 1:
            self.scan.top_level.append(name)
        nxt = self.peek()
        if nxt is not None and nxt.text == ":":
            self.pos += 1
            nxt = self.peek()
        if nxt is None:
            return
        if nxt.text in ("{", "<"):
            self.pos += 1
            self.open(frame, fd, name, name_tok.line, "}" if nxt.text == "{" else ">")
        elif nxt.text == "[":
            self.pos += 1
            self.list_value(frame, fd, name, name_tok.line)
        else:
            self.scalar(frame, name, name_tok.line)

    def lookup(self, frame: _Frame, name: str, line: int) -> FieldDescriptor | None:
        if frame.descriptor is None:
            return None
        fd = frame.descriptor.fields_by_name.get(name)
        if fd is None:
            candidates = sorted(frame.descriptor.fields_by_name)
            self.scan.unknown.append((line, frame.path, name, candidates))
        return fd

    def child_path(self, frame: _Frame, name: str) -> str:
        # A map entry's `value` block is the entry itself: no `.value` segment in paths.
        return frame.path if frame.map_entry and name == "value" else child(frame.path, name)

    def open(
        self, frame: _Frame, fd: FieldDescriptor | None, name: str, line: int, closer: str
    ) -> None:
        path = self.child_path(frame, name)
        message = fd.message_type if fd is not None else None
        is_map = message is not None and message.GetOptions().map_entry
        if fd is not None and fd.is_repeated and not is_map:
            index = frame.seen.get(name, 0)
            frame.seen[name] = index + 1
            self.scan.lines.record(path, line)
            path = indexed(path, index)
        self.scan.lines.record(path, line)
        entry = _Frame(message, path, line, name, closer, map_entry=is_map, map_path=path)
        if is_map:
            entry.path = keyed(path, "?")  # until the entry's `key:` is read
        self.stack.append(entry)

    def scalar(self, frame: _Frame, name: str, line: int) -> None:
        value = self.peek()
        self.pos += 1
        if value is not None and value.kind == "string":
            # Adjacent string literals are one value in text format.
            while (nxt := self.peek()) is not None and nxt.kind == "string":
                self.pos += 1
        if frame.map_entry and name == "key" and value is not None:
            key = value.text.strip("\"'") if value.kind == "string" else value.text
            frame.path = keyed(frame.map_path, key)
            self.scan.lines.lines[frame.path] = frame.line
            return
        path = self.child_path(frame, name)
        if frame.map_entry and name == "value":
            self.scan.lines.lines[path] = line
        self.scan.lines.record(path, line)

    def list_value(self, frame: _Frame, fd: FieldDescriptor | None, name: str, line: int) -> None:
        """`name: [1, 2]` is read here; `name: [{...}, {...}]` opens its blocks from run()."""
        self.scan.lines.record(self.child_path(frame, name), line)
        frame.in_list = (name, fd)


def scan(text: str, root: Descriptor) -> TextScan:
    return _Scanner(text, root).run()


def top_level_names(text: str) -> list[str]:
    """Field names at the outermost level, for telling an experiment from a convert spec."""
    return _Scanner(text, None).run().top_level


def check_syntax(text: str, source: Path, diags: Diagnostics) -> None:
    """Text-format syntax only, for a spec Heron has no schema for: every field is accepted."""
    found = _Scanner(text, None).run()
    if found.unclosed is not None:
        block = found.unclosed
        diags.error(
            source,
            block.line,
            f"block {block.name!r} opened here is never closed: expected {block.closer!r}",
            block.path,
        )
        return
    try:
        text_format.Parse(text, empty_pb2.Empty(), allow_unknown_field=True)
    except text_format.ParseError as e:
        diags.error(source, e.GetLine() or 0, _ECHO.sub("", str(e), count=1))


def parse_text(text: str, message: Message, source: Path, diags: Diagnostics) -> FieldLines:
    """Fill `message` from `text`; every problem goes to `diags` with its line."""
    found = scan(text, descriptor_of(message))
    if found.unclosed is not None:
        # Fields after a missing brace land in the wrong block: report only the brace.
        block = found.unclosed
        diags.error(
            source,
            block.line,
            f"block {block.name!r} opened here is never closed: expected {block.closer!r} "
            "(the braces after it pair up wrongly)",
            block.path,
        )
        return found.lines
    for line, parent, name, candidates in found.unknown:
        where = f" in {parent}" if parent else " at the top level"
        hint = KNOWN_MISTAKES.get(name)
        if hint is None:
            guess = closest(name, candidates)
            hint = f"did you mean {guess!r}?" if guess else "valid fields: " + ", ".join(candidates)
        diags.error(source, line, f"unknown field {name!r}{where}; {hint}", child(parent, name))
    try:
        text_format.Parse(text, message, allow_unknown_field=True)
    except text_format.ParseError as e:
        line = e.GetLine() or 0
        on_line = [path for path, at in found.lines.lines.items() if at == line]
        secret = any(is_secret_path(path) for path in on_line)
        label = min(on_line, key=len) if on_line else ""
        diags.error(source, line, _explain(e, secret), label)
    return found.lines


_ECHO = re.compile(r"^\d+:\d+ : (?:'.*?': )?", re.DOTALL)
_ENUM = re.compile(r'Enum type "([\w.]+)" has no value named (\S+?)\.?$')
_NUMBER = re.compile(r"^Couldn't parse (\w+(?: \w+)?): (.*)$", re.DOTALL)
_ONEOF = re.compile(
    r'^Field "(\w+)" is specified along with field "(\w+)", another member of oneof "(\w+)"'
)


def _explain(error: text_format.ParseError, secret: bool) -> str:
    """protobuf's message without the echoed source line, reworded; nothing of the value when
    the line holds a secret."""
    message = _ECHO.sub("", str(error), count=1)
    if secret:
        return "the value is not valid here (not shown: this field holds a secret)"
    if (enum := _ENUM.search(message)) is not None:
        return _enum_message(enum.group(1), enum.group(2))
    if (number := _NUMBER.match(message)) is not None:
        return f"expected {_article(number.group(1))}, got {number.group(2)}"
    if (oneof := _ONEOF.match(message)) is not None:
        first, second, group = oneof.groups()
        return f"{first} and {second} exclude each other (oneof {group}): give one of them"
    if message.startswith("Expected identifier or number, got }"):
        return "unexpected '}': there is no open block to close here"
    return message


def _article(kind: str) -> str:
    return f"an {kind}" if kind[0] in "aeiou" else f"a {kind}"


def _enum_message(enum_name: str, value: str) -> str:
    enum = descriptor_pool.Default().FindEnumTypeByName(enum_name)
    names = [v.name for v in enum.values]
    guess = closest(value, names)
    hint = f" (did you mean {guess!r}?)" if guess else ""
    return f"{value!r} is not one of {', '.join(names)}{hint}"
