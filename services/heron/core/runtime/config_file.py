"""Reading a service's settings file (YAML or JSON) and remembering where each key sits.

The line numbers let a bad value be reported as `settings.yaml:7`, not just by field name.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

SUFFIXES = {".yaml": "yaml", ".yml": "yaml", ".json": "json"}


@dataclass(frozen=True)
class SettingsFile:
    """A parsed settings file: its top-level mapping and the 1-based line of every key."""

    path: Path
    data: Mapping[str, Any]
    lines: Mapping[tuple[str, ...], int] = field(default_factory=dict)

    def line_of(self, loc: tuple[str, ...]) -> int:
        """Line of the deepest key of `loc` the file has; 0 when it has none of them."""
        for n in range(len(loc), 0, -1):
            if loc[:n] in self.lines:
                return self.lines[loc[:n]]
        return 0


class SettingsFileError(Exception):
    """The settings file is missing, unreadable or not a mapping; names file and line."""


def read_settings_file(path: Path) -> SettingsFile:
    kind = SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise SettingsFileError(
            f"{path}: expected a settings file ending in {', '.join(SUFFIXES)}, "
            f"got {path.suffix or 'no suffix'!r}"
        )
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise SettingsFileError(f"{path}: cannot read the settings file: {e.strerror}") from None
    data = _parse_json(path, text) if kind == "json" else _parse_yaml(path, text)
    if data is None:  # an empty file sets nothing
        data = {}
    if not isinstance(data, dict):
        raise SettingsFileError(
            f"{path}:1: expected a mapping of setting names to values at the top level, "
            f"got {type(data).__name__}"
        )
    bad = [k for k in data if not isinstance(k, str)]
    if bad:
        raise SettingsFileError(f"{path}: expected setting names as text, got {bad[0]!r}")
    return SettingsFile(path, data, _key_lines(text))


def _parse_yaml(path: Path, text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark
        line = f":{mark.line + 1}" if mark is not None else ""
        raise SettingsFileError(f"{path}{line}: not valid YAML: {e.problem}") from None
    except yaml.YAMLError as e:
        raise SettingsFileError(f"{path}: not valid YAML: {e}") from None


def _parse_json(path: Path, text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise SettingsFileError(f"{path}:{e.lineno}: not valid JSON: {e.msg}") from None


def _key_lines(text: str) -> dict[tuple[str, ...], int]:
    """1-based line of every mapping key, by its path; JSON parses as YAML for this purpose."""
    try:
        root = yaml.compose(text)
    except yaml.YAMLError:
        return {}  # line numbers are a courtesy; the data itself was parsed already
    lines: dict[tuple[str, ...], int] = {}
    _walk(root, (), lines)
    return lines


def _walk(
    node: yaml.Node | None, prefix: tuple[str, ...], lines: dict[tuple[str, ...], int]
) -> None:
    if not isinstance(node, yaml.MappingNode):
        return
    for key, value in node.value:
        if isinstance(key, yaml.ScalarNode):
            loc = (*prefix, str(key.value))
            lines[loc] = key.start_mark.line + 1
            _walk(value, loc, lines)
