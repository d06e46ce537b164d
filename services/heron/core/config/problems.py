"""Cross-field findings raised from model validators, each naming the field it is about.

A pydantic `model_validator` can raise only one error and its location is the model itself;
loaders want one diagnostic per problem, on the line of the field concerned. `Problems` collects
(field path, message) pairs and raises them together as one error whose context carries the
list, which `heron.core.config.validation` splits back into separate diagnostics.
"""

from __future__ import annotations

from pydantic_core import PydanticCustomError

CROSS_FIELD = "cross_field"


class Problems:
    def __init__(self) -> None:
        self.items: list[tuple[str, str]] = []

    def add(self, at: str, message: str) -> None:
        """`at` is a dotted field path relative to the model being validated ('' = itself)."""
        self.items.append((at, message))

    def raise_if_any(self) -> None:
        if self.items:
            raise PydanticCustomError(
                CROSS_FIELD,
                "{summary}",
                {"summary": "; ".join(m for _, m in self.items), "problems": self.items},
            )
