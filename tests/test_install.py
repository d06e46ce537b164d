"""The two installs of the Makefile: `make demo`'s runtime extras stay lean, `make setup`'s hold
everything. The demo itself is what proves the runtime install runs (docs/development.md)."""

from __future__ import annotations

import re
import tomllib
from functools import cache
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# What only training, engine builds, the operator or the developer tools need.
NOT_RUNTIME = {"torch", "torchvision", "torch-pruning", "tensorrt-rtx-cu12", "kopf", "pytest"}


@cache
def extras() -> dict[str, list[str]]:
    with (REPO / "pyproject.toml").open("rb") as f:
        found: dict[str, list[str]] = tomllib.load(f)["project"]["optional-dependencies"]
    return found


def makefile_list(name: str) -> list[str]:
    text = (REPO / "Makefile").read_text(encoding="utf-8")
    match = re.search(rf"^{name}\s*\?=\s*(.*)$", text, re.MULTILINE)
    assert match, f"the Makefile sets no {name}"
    return match.group(1).strip().split(",")


def closure(names: list[str]) -> set[str]:
    """The distributions the extras `names` bring, following `heron[...]` references."""
    found: set[str] = set()
    todo = list(names)
    while todo:
        for requirement in extras()[todo.pop()]:
            name = re.split(r"[\[<>=!~ ;]", requirement, maxsplit=1)[0].lower()
            if name == "heron":
                todo.extend(requirement.split("[", 1)[1].split("]", 1)[0].split(","))
            else:
                found.add(name)
    return found


def test_the_runtime_install_brings_no_training_or_developer_package() -> None:
    runtime = makefile_list("RUNTIME_EXTRAS")
    assert set(runtime) <= set(extras())
    assert closure(runtime) & NOT_RUNTIME == set()


def test_the_runtime_install_can_run_an_int8_onnx_model() -> None:
    # ONNX Runtime's INT8 path rewrites the graph with onnx (heron.core.int8.qdq): without it
    # the demo's inference service crashed at start.
    assert {"onnxruntime", "onnx", "av", "grpcio"} <= closure(makefile_list("RUNTIME_EXTRAS"))


def test_the_full_install_holds_the_runtime_one() -> None:
    assert set(makefile_list("RUNTIME_EXTRAS")) <= set(makefile_list("EXTRAS"))
