"""Warnings and errors found while loading a config file, each pointing at file:line.

Every loader (deepstream-app, nvinfer, TAO spec, YAML) reports through these types so that
`heron config check` prints them the same way and callers can tell warnings from errors.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path


class Severity(Enum):
    WARNING = "warning"
    ERROR = "error"


@dataclass(frozen=True)
class Diagnostic:
    """One finding. `line` is 1-based; 0 when the finding is about the file as a whole."""

    severity: Severity
    file: Path
    line: int
    message: str
    field: str = ""  # "group.key" or a dotted field path, when there is one

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else f"{self.file}"
        what = f"[{self.field}] " if self.field else ""
        return f"{where}: {self.severity.value}: {what}{self.message}"


@dataclass
class Diagnostics:
    """Collects findings while a file is loaded; `raise_if_errors()` ends the load."""

    items: list[Diagnostic] = field(default_factory=list)

    def warn(self, file: Path, line: int, message: str, field: str = "") -> None:
        self.items.append(Diagnostic(Severity.WARNING, file, line, message, field))

    def error(self, file: Path, line: int, message: str, field: str = "") -> None:
        self.items.append(Diagnostic(Severity.ERROR, file, line, message, field))

    def extend(self, other: Iterable[Diagnostic]) -> None:
        self.items.extend(other)

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.items if d.severity is Severity.ERROR]

    @property
    def warnings(self) -> list[Diagnostic]:
        return [d for d in self.items if d.severity is Severity.WARNING]

    def raise_if_errors(self) -> None:
        if self.errors:
            raise ConfigError(self.items)


class ConfigError(Exception):
    """A config file could not be loaded; carries every finding, warnings included."""

    def __init__(self, diagnostics: Iterable[Diagnostic]) -> None:
        self.diagnostics = list(diagnostics)
        errors = [d for d in self.diagnostics if d.severity is Severity.ERROR]
        super().__init__("\n".join(str(d) for d in errors) or "invalid configuration")


def closest(name: str, candidates: Iterable[str]) -> str | None:
    """The valid name a misspelt one most likely meant, or None when nothing is close."""
    matches = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return matches[0] if matches else None


def unknown_name_message(kind: str, name: str, candidates: Iterable[str]) -> str:
    """'unknown key 'batchsize' (did you mean 'batch-size'?)' — the shared wording."""
    guess = closest(name, candidates)
    hint = f" (did you mean {guess!r}?)" if guess else ""
    return f"unknown {kind} {name!r}{hint}; it is ignored"
