"""nvinfer's `network-mode` for ONNX Runtime on CPU: which model file the session loads.

- 0 FP32: the `onnx-file` as it is.
- 1 INT8 with `int8-calib-file`: the `onnx-file` quantised at load time with the TensorRT
  calibration cache's per-tensor scales (the cache `heron calibrate` writes and DeepStream
  reads), so the CPU runs the same INT8 ranges a TensorRT engine would. Q/DQ, uint8 activations
  and int8 per-channel weights (U8S8): ~3x faster than FP32 in ONNX Runtime on an AVX2/VNNI
  CPU, where int8 activations (S8S8) are no faster than FP32 (../shared/NOTES.md). Each
  tensor saturates where TensorRT's does, at the cache's amax (= 127 * scale): a tensor that
  may be negative gets TensorRT's symmetric [-amax, amax] (uint8 zero point 128, step
  amax / 127.5, TensorRT's step); the output of a ReLU, ReLU6 (Clip at 0) or Sigmoid gets
  [0, amax] (zero point 0), where TensorRT uses only its 128 non-negative levels. That also
  lets ONNX Runtime fold the ReLU/Clip into the quantised Conv, which is what makes INT8 fast
  here: a symmetric range on a ReLU6 output keeps the Clip as a float op between a
  DequantizeLinear and a QuantizeLinear, and that model runs no faster than FP32.
  The quantised model is cached next to the ONNX file (else in ~/.cache/heron/int8), named by
  the SHA-256 of the model, the cache and this recipe, so a changed input quantises afresh.
- 1 INT8 on a model that already holds Q/DQ nodes (explicit quantisation): as it is.
- 1 INT8 without a calibration file: FP32 with a warning (DeepStream falls back to FP16 there).
- 2 FP16: FP32 with a one-line warning (no fast FP16 on x86 CPUs in ONNX Runtime).
- 3 best: INT8 when a calibration file is given, else FP32.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from heron.core.config.nvinfer_models import InferProperty, NetworkMode
from heron.core.int8 import calib_cache
from heron.core.int8.qdq import has_qdq as has_qdq_graph
from heron.inference.errors import ModelMismatchError

log = logging.getLogger(__name__)

# Bump when the quantisation below changes: cached models made by an older recipe are not reused.
RECIPE = "heron-ort-u8s8-qdq-per-channel-trt-amax-v3"


@dataclass(frozen=True)
class Quantized:
    """An INT8 model made (or found) for one ONNX file and one calibration cache."""

    path: Path
    reused: bool  # found in the cache folder, not made now
    scaled: int  # activations of the model the cache gives a scale for
    unscaled: int  # activations without a scale: their ops stay in float


def model_for_mode(
    onnx_file: Path, prop: InferProperty, cache_dir: Path | None = None
) -> tuple[Path, str]:
    """The file the CPU session loads for `prop.network_mode`, and what was done (for logs)."""
    mode, calib = prop.network_mode, prop.int8_calib_file
    if mode is NetworkMode.FP16:
        log.warning(
            "network-mode=2 (FP16): ONNX Runtime on CPU has no fast FP16; running %s in FP32",
            onnx_file.name,
        )
        return onnx_file, "fp32 (fp16 asked)"
    if mode is NetworkMode.FP32 or (mode is NetworkMode.BEST and calib is None):
        return onnx_file, "fp32"
    if has_qdq(onnx_file):
        log.info("network-mode=1: %s is already quantised (Q/DQ); running it as is", onnx_file)
        return onnx_file, "int8 (explicit Q/DQ)"
    if calib is None:
        log.warning(
            "network-mode=1 (INT8) without int8-calib-file and %s has no Q/DQ nodes: no scales "
            "to quantise with; running FP32",
            onnx_file.name,
        )
        return onnx_file, "fp32 (int8 asked, no calibration)"
    made = quantize_with_cache(onnx_file, calib, cache_dir)
    log.info(
        "network-mode=1 (INT8): %s %s, quantised U8S8 Q/DQ from %s (%d activations scaled, "
        "%d left in float)",
        "reusing" if made.reused else "wrote",
        made.path,
        calib,
        made.scaled,
        made.unscaled,
    )
    return made.path, "int8 (u8s8 from the calibration cache)"


def has_qdq(onnx_file: Path) -> bool:
    import onnx

    try:
        model = onnx.load(str(onnx_file), load_external_data=False)
    except Exception as e:  # onnx raises DecodeError and friends for a broken file
        raise ModelMismatchError(f"ONNX model {onnx_file}: cannot load: {e}") from e
    return has_qdq_graph(model)


def quantize_with_cache(onnx_file: Path, calib_file: Path, cache_dir: Path | None) -> Quantized:
    """`onnx_file` quantised with `calib_file`'s scales; made once, then reused."""
    try:
        cache = calib_cache.read(calib_file)
    except calib_cache.CalibCacheError as e:
        raise ModelMismatchError(f"int8-calib-file {e}") from e
    amax = {name: cache.amax(name) for name in cache.scales}
    activations, nonnegative = _activations(onnx_file)
    scaled = {
        name: (0.0 if name in nonnegative else -a, a)
        for name, a in amax.items()
        if name in activations
    }
    if not scaled:
        shown = ", ".join(list(amax)[:3])
        raise ModelMismatchError(
            f"int8-calib-file {calib_file}: none of its {len(amax)} tensors ({shown}, ...) is a "
            f"tensor of {onnx_file}; expected the cache `heron calibrate` wrote for this model"
        )
    counts = {"scaled": len(scaled), "unscaled": len(activations) - len(scaled)}
    name = f"{onnx_file.stem}.int8-{_key(onnx_file, calib_file)}.onnx"
    for folder in _folders(onnx_file, cache_dir):
        if (folder / name).is_file():
            return Quantized(folder / name, True, **counts)
    for folder in _folders(onnx_file, cache_dir):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            _quantize(onnx_file, scaled, folder / name, f"from {calib_file.name} ({cache.header})")
        except PermissionError as e:
            log.info("cannot write the INT8 model to %s (%s); trying the next folder", folder, e)
            continue
        return Quantized(folder / name, False, **counts)
    raise ModelMismatchError(
        f"int8: no writable folder for the quantised model of {onnx_file} (tried "
        f"{', '.join(str(f) for f in _folders(onnx_file, cache_dir))})"
    )


def _folders(onnx_file: Path, cache_dir: Path | None) -> list[Path]:
    """Where the quantised model may live: the configured folder, else next to the model, then
    the user's cache (a model on a read-only volume)."""
    if cache_dir is not None:
        return [cache_dir]
    user = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "heron" / "int8"
    return [onnx_file.parent, user]


def _key(onnx_file: Path, calib_file: Path) -> str:
    import onnxruntime

    digest = hashlib.sha256()
    for part in (onnx_file, calib_file):
        digest.update(_sha256(part).encode("ascii"))
    digest.update(f"{RECIPE}; onnxruntime {onnxruntime.__version__}".encode())
    return digest.hexdigest()[:16]


def _sha256(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _activations(onnx_file: Path) -> tuple[set[str], set[str]]:
    """The float tensors computed at run time (what a calibration cache scales), and those of
    them that cannot be negative (outputs of Relu, Sigmoid and Clip with a minimum >= 0)."""
    import onnx
    from onnx import numpy_helper

    from heron.core.int8.qdq import activation_tensors

    model = onnx.load(str(onnx_file), load_external_data=False)
    graph = model.graph
    constants = {i.name: i for i in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            constants[node.output[0]] = node.attribute[0].t
    names = set(activation_tensors(model))
    nonnegative: set[str] = set()
    for node in graph.node:
        low: float | None = None
        if node.op_type in ("Relu", "Sigmoid"):
            low = 0.0
        elif node.op_type == "Clip" and len(node.input) > 1 and node.input[1] in constants:
            low = float(numpy_helper.to_array(constants[node.input[1]]).min())
        elif node.op_type == "Clip":
            low = next((a.f for a in node.attribute if a.name == "min"), None)  # opset < 11
        if low is not None and low >= 0.0:
            nonnegative.add(node.output[0])
    return names, nonnegative


def _quantize(
    source: Path, ranges: Mapping[str, tuple[float, float]], target: Path, note: str
) -> None:
    """Write `target` atomically (replicas may race): the core's U8S8 Q/DQ form with the given
    activation ranges; the source's metadata (bbox scale, settings) is kept."""
    from heron.core.int8.qdq import QdqVariant, quantize, save_ranges

    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".int8-") as tmp:
        saved = save_ranges(ranges, Path(tmp) / "ranges.json")
        written = quantize(
            source, saved, Path(tmp) / target.name, variant=QdqVariant.CPU, note=f"{RECIPE}; {note}"
        )
        os.replace(written, target)
