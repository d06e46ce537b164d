"""Value types shared by the pipeline and nvinfer models.

Each type accepts both spellings a user may write: the key-file one (`0;1;0;1`, `network-mode=1`)
and the YAML one (`[0, 1, 0, 1]`, `network_mode: int8`), so one model serves every loader.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from enum import StrEnum
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from pydantic_core import PydanticCustomError

from heron.core.config.keyfile import split_list

E = TypeVar("E", bound=StrEnum)


class Strict(BaseModel):
    """Base of every config model: unknown fields are refused, defaults are validated too."""

    model_config = ConfigDict(extra="forbid", validate_default=True)


NonNeg = Annotated[int, Field(ge=0)]
Port = Annotated[int, Field(ge=1, le=65535)]


def ds(key: str) -> dict[str, Any]:
    """`json_schema_extra` naming a field's key in DeepStream files when it is not kebab-case."""
    return {"ds_key": key}


def _as_list(value: object) -> object:
    return split_list(value) if isinstance(value, str) else value


IntList = Annotated[list[int], BeforeValidator(_as_list)]
FloatList = Annotated[list[float], BeforeValidator(_as_list)]
StrList = Annotated[list[str], BeforeValidator(_as_list)]

Unit = Annotated[float, Field(ge=0.0, le=1.0)]


def _as_color(value: object) -> object:
    items = split_list(value) if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or len(items) != 4:
        raise ValueError(f"expected a colour of 4 numbers r;g;b;a between 0 and 1, found {value!r}")
    return items


Color = Annotated[tuple[Unit, Unit, Unit, Unit], BeforeValidator(_as_color)]
"""RGBA, each component in [0, 1]; written `r;g;b;a` in key files."""


def coded(enum: type[E], codes: Mapping[int, E]) -> Callable[[object], object]:
    """A before-validator taking DeepStream's integer code (or the member's name) to the member."""
    named = [f"{code} ({member.value})" for code, member in codes.items()]
    choices = ", ".join(named[:-1]) + f" or {named[-1]}" if len(named) > 1 else named[0]

    def parse(value: object) -> object:
        if isinstance(value, enum):
            return value
        number = value
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            number = int(value)
        if isinstance(number, int) and not isinstance(number, bool) and number in codes:
            return codes[number]
        if isinstance(value, str) and value in enum._value2member_map_:
            return enum(value)
        raise PydanticCustomError(
            "coded_value",
            "expected one of {choices}; found {found}",
            {"choices": choices, "found": "nothing" if value is None else repr(value)},
        )

    return parse
