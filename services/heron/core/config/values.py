"""Value types shared by the pipeline and nvinfer models.

Each type accepts both spellings a user may write: the key-file one (`0;1;0;1`, `network-mode=1`)
and the YAML one (`[0, 1, 0, 1]`, `network_mode: int8`), so one model serves every loader.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from enum import StrEnum
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError

from heron.core.config.keyfile import split_list

E = TypeVar("E", bound=StrEnum)


INT32 = (-(2**31), 2**31 - 1)
"""The integers a key-file value may hold: GLib reads them as a C int (g_key_file_get_integer)."""
MAX_FRAME_SIDE = 8192
"""The largest frame width or height Heron accepts (8K: NVIDIA's decoders stop there too)."""


class Strict(BaseModel):
    """Base of every config model: unknown fields are refused, defaults are validated too;
    a float must be finite (`1e400` reads as inf) and an integer fit 32 bits, as GLib and
    DeepStream read them."""

    model_config = ConfigDict(extra="forbid", validate_default=True, allow_inf_nan=False)

    @field_validator("*", mode="after")
    @classmethod
    def _fits_32_bits(cls, value: Any) -> Any:
        found = _outside_int32(value)
        if found:
            raise PydanticCustomError(
                "int32",
                "expected a whole number from {low} to {high} (a 32-bit integer, as GLib reads "
                "it); found {found}",
                {"low": INT32[0], "high": INT32[1], "found": found},
            )
        return value


def _outside_int32(value: Any) -> str:
    """The first integer in `value` (nested lists, dict keys and values) beyond 32 bits, as
    text; '' when there is none."""
    if isinstance(value, bool):
        return ""
    if isinstance(value, int):
        return "" if INT32[0] <= value <= INT32[1] else str(value)
    if isinstance(value, dict):
        items = [*value.keys(), *value.values()]
    elif isinstance(value, list | tuple | set | frozenset):
        items = list(value)
    else:
        return ""
    return next((found for item in items if (found := _outside_int32(item))), "")


NonNeg = Annotated[int, Field(ge=0)]
Port = Annotated[int, Field(ge=1, le=65535)]
FrameSide = Annotated[int, Field(ge=1, le=MAX_FRAME_SIDE)]
"""A frame's width or height in pixels."""


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
