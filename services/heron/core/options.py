"""Command-line options derived from the pydantic model they set, so each default has one home.

A command declares such an option with no default of its own (None: not given) and the help of
the model's field, which names the model's default:

    min_batch: Annotated[int | None, typer.Option(help=field_help(Build, "min_batch"))] = None
    ...
    Build.model_validate(given(onnx=onnx, min_batch=min_batch, ...))

`given` drops what the user did not pass, and the model fills it in.
"""

from __future__ import annotations

from enum import Enum
from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticUndefined


def field_help(model: type[BaseModel], name: str, extra: str = "") -> str:
    """The field's description, then `extra`, then its default as the model has it."""
    field = model.model_fields[name]
    text = " ".join(part for part in (field.description or "", extra) if part)
    default = field.get_default(call_default_factory=True)
    if default is PydanticUndefined:
        return text
    if isinstance(default, Enum):
        default = default.value
    if isinstance(default, list | tuple):
        default = ",".join(str(d) for d in default) or "none"
    return f"{text} (default: {default})"


def field_default(model: type[BaseModel], name: str) -> Any:
    """The field's default, for the few options a command must know before validating."""
    return model.model_fields[name].get_default(call_default_factory=True)


def given(**values: Any) -> dict[str, Any]:
    """The options the user passed: None stands for 'not given', so the model's default holds."""
    return {k: v for k, v in values.items() if v is not None}
