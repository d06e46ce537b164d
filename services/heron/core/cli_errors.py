"""How every `heron` command refuses: one line, `error: ...`, on stderr, and exit code 1, so a
script can tell the error from the report and grep it; output paths are checked the same way
before any work starts."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console

from heron.core.outputs import OutputKind, OutputPathError, check_output

if TYPE_CHECKING:
    from pydantic import ValidationError


def fail(message: str) -> typer.Exit:
    """Print the refusal and return the exit to raise (`raise fail(...) from None`)."""
    # soft_wrap: one line however long, whatever the terminal's width.
    Console(stderr=True, highlight=False).print(
        f"error: {message}", style="red", markup=False, soft_wrap=True
    )
    return typer.Exit(1)


def check_outputs(*outputs: tuple[Path, OutputKind, str], inputs: tuple[Path | None, ...]) -> None:
    """Every output path checked before the work starts: one line and exit 1 when wrong."""
    try:
        for path, kind, option in outputs:
            check_output(path, kind, option=option, inputs=inputs)
    except OutputPathError as e:
        raise fail(str(e)) from None


def invalid_options(error: ValidationError, options: Mapping[str, str] | None = None) -> typer.Exit:
    """A model's refusal of the command's options, one `--option: expected ..., got ...` per
    problem (never pydantic's dump). `options` maps a field to its option where the names
    differ (`intra_op_threads` → `--threads`); any other field `f_g` is `--f-g`."""
    return fail("; ".join(option_problem(err, options or {}) for err in error.errors()))


def option_problem(err: Mapping[str, Any], options: Mapping[str, str]) -> str:
    """One pydantic error about an option, as `--option: expected ..., got ...`."""
    loc = [str(part) for part in err.get("loc", ())]
    field = loc[0] if loc else ""
    name = options.get(field) or (f"--{field.replace('_', '-')}" if field else "options")
    if len(loc) > 1:
        name += f" ({'.'.join(loc[1:])})"
    message = str(err.get("msg", "")).removeprefix("Value error, ")
    if message.startswith("Input should be "):
        message = "expected " + message.removeprefix("Input should be ")
    if err.get("type") == "missing":
        return f"{name}: missing; it is required"
    given = err.get("input")
    if "got" in message or "found" in message or isinstance(given, dict):
        return f"{name}: {message}"
    return f"{name}: {message}, got {given!r}"
