"""How every `heron` command refuses: one line, `error: ...`, on stderr, and exit code 1, so a
script can tell the error from the report and grep it; output paths are checked the same way
before any work starts."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from heron.core.outputs import OutputKind, OutputPathError, check_output


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
