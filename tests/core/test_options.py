"""CLI options take their help and default from the model they set: one home per default."""

from __future__ import annotations

from enum import StrEnum

from heron.core.options import field_default, field_help, given
from pydantic import BaseModel, Field


class Colour(StrEnum):
    RED = "red"


class Example(BaseModel):
    name: str = Field(description="Required.")
    count: int = Field(3, description="How many.")
    colour: Colour = Field(Colour.RED, description="Which.")
    tags: list[str] = Field(default_factory=lambda: ["a", "b"], description="Labels.")


def test_help_names_the_models_default() -> None:
    assert field_help(Example, "count") == "How many. (default: 3)"
    assert field_help(Example, "colour", "red only.") == "Which. red only. (default: red)"
    assert field_help(Example, "tags") == "Labels. (default: a,b)"
    assert field_help(Example, "name") == "Required."
    assert field_default(Example, "tags") == ["a", "b"]


def test_only_given_options_reach_the_model() -> None:
    assert given(count=None, name="x", flag=False) == {"name": "x", "flag": False}
    assert Example.model_validate(given(name="x", count=None)).count == 3
