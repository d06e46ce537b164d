"""Field paths in TAO specs and the line each field was written on.

Both readers (protobuf text format and YAML) record, for every field they meet, a path in one
notation and the 1-based line it starts on, so semantic checks can point at `file:line` without
knowing which syntax the user wrote:

    training_config.learning_rate.soft_start_annealing_schedule.min_learning_rate
    cost_function_config.target_classes[1].objectives[0].name        (repeated messages)
    bbox_rasterizer_config.target_class_config["no-mask"].cov_radius_x   (map entries)
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import cast

from google.protobuf.descriptor import Descriptor
from google.protobuf.message import Message

# Fields that hold credentials: kept in the message (training needs them), never printed or
# echoed in an error message.
SECRET_FIELDS = frozenset({"heron.v1.tao.WandBConfig.key"})
# The same fields as they end a field path (WandBConfig is only reached as wandb_config).
_SECRET_SUFFIXES = (".wandb_config.key",)


def is_secret_path(path: str) -> bool:
    """True for a field path such as training_config.visualizer.wandb_config.key."""
    return path.endswith(_SECRET_SUFFIXES) if path else False


def descriptor_of(message: Message) -> Descriptor:
    """The message's descriptor as the pure-Python type (the upb one has the same API)."""
    return cast(Descriptor, message.DESCRIPTOR)


def child(parent: str, name: str) -> str:
    return f"{parent}.{name}" if parent else name


def indexed(path: str, index: int) -> str:
    return f"{path}[{index}]"


def keyed(path: str, key: object) -> str:
    """A map entry's path; keys are quoted as JSON strings so dots and dashes stay unambiguous."""
    return f"{path}[{json.dumps(str(key))}]"


@dataclass
class FieldLines:
    """path -> the line where that field first appears (0 when unknown)."""

    lines: dict[str, int] = field(default_factory=dict)

    def record(self, path: str, line: int) -> None:
        self.lines.setdefault(path, line)

    def line_of(self, path: str) -> int:
        """The field's own line or, when it is absent, the line of its nearest present parent."""
        while path:
            if path in self.lines:
                return self.lines[path]
            path = _parent(path)
        return 0


def _parent(path: str) -> str:
    if path.endswith("]"):
        return path[: path.rindex("[")]
    return path.rpartition(".")[0]
