"""The node's GPU, as plan metadata records it: name and compute capability ('8.6')."""

from __future__ import annotations

import subprocess

from heron.engine.errors import EngineError


class NoGpuError(EngineError):
    """nvidia-smi is missing or sees no GPU."""


def gpu_info(index: int = 0) -> tuple[str, str]:
    """(name, compute capability) of GPU `index`, from nvidia-smi (needs driver ≥ 510)."""
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,compute_cap", "--format=csv,noheader", f"-i={index}"],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        ).stdout
    except (OSError, subprocess.SubprocessError) as e:
        raise NoGpuError(f"no GPU {index} on this node: nvidia-smi failed ({e})") from None
    name, _, capability = out.strip().rpartition(",")
    if not name or not capability:
        raise NoGpuError(f"nvidia-smi gave no name and compute capability: {out.strip()!r}")
    return name.strip(), capability.strip()
