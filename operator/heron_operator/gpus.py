"""GPU products of the cluster, from the node labels of NVIDIA's GPU feature discovery.

The GPU Operator labels each GPU node with `nvidia.com/gpu.product` (the product name as a
label value: `NVIDIA-A10`, `Tesla-T4`) and `nvidia.com/gpu.compute.major/minor`. A TensorRT
plan runs only on the product it was built on, so the operator builds one per product.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

PRODUCT_LABEL = "nvidia.com/gpu.product"
COMPUTE_MAJOR_LABEL = "nvidia.com/gpu.compute.major"
COMPUTE_MINOR_LABEL = "nvidia.com/gpu.compute.minor"

# What TensorRT-RTX builds ahead of time (docs/engine.md); SM 9.0 (H100) is not among them.
RTX_TARGETS = ("sm75", "sm80", "sm86", "sm89", "sm120", "sm121")


@dataclass(frozen=True)
class GpuProduct:
    name: str  # the label value, as a nodeSelector matches it
    compute_capability: str | None  # "8.6", when feature discovery labels it
    nodes: int

    @property
    def sm(self) -> str | None:
        return (
            None
            if self.compute_capability is None
            else "sm" + self.compute_capability.replace(".", "")
        )


def label_value(product: str) -> str:
    """A product name as feature discovery writes it into the label: `NVIDIA A10` → `NVIDIA-A10`
    (a label value holds only letters, digits, '-', '_' and '.')."""
    return re.sub(r"[^A-Za-z0-9_.-]", "-", product.strip())


def products(nodes: Iterable[Mapping[str, Any]]) -> dict[str, GpuProduct]:
    """The distinct products on `nodes`, by label value, with their compute capability."""
    found: dict[str, GpuProduct] = {}
    for node in nodes:
        labels: Mapping[str, str] = node.get("metadata", {}).get("labels") or {}
        name = labels.get(PRODUCT_LABEL)
        if not name:
            continue
        major, minor = labels.get(COMPUTE_MAJOR_LABEL), labels.get(COMPUTE_MINOR_LABEL)
        cc = f"{major}.{minor}" if major and minor else None
        seen = found.get(name)
        found[name] = GpuProduct(
            name,
            cc if cc is not None else (seen.compute_capability if seen else None),
            (seen.nodes if seen else 0) + 1,
        )
    return dict(sorted(found.items()))


def rtx_targets(chosen: Iterable[GpuProduct]) -> list[str]:
    """The TensorRT-RTX targets among the chosen products' compute capabilities (may be empty:
    the engine's default targets are then built)."""
    sms = {p.sm for p in chosen if p.sm in RTX_TARGETS}
    return [t for t in RTX_TARGETS if t in sms]
