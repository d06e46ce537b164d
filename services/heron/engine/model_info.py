"""What the engine needs to know about a detector ONNX: its input, outputs and input size.

The input size comes from the ONNX input's static height/width, else from the training export's
metadata (`heron.settings` → model.input_height/input_width), else DetectNet_v2's 960×544.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from heron.core.model_metadata import SETTINGS_METADATA_KEY
from heron.engine.errors import ModelFileError

if TYPE_CHECKING:
    import onnx

DEFAULT_HEIGHT, DEFAULT_WIDTH = 544, 960


@dataclass(frozen=True)
class TensorSpec:
    name: str
    dims: tuple[int, ...]  # without the batch axis; -1 where dynamic
    elem_type: int  # onnx.TensorProto data type


@dataclass(frozen=True)
class ModelInfo:
    path: Path
    input: TensorSpec  # (C, H, W), H and W resolved
    outputs: tuple[TensorSpec, ...]
    metadata: dict[str, str]

    @property
    def channels(self) -> int:
        return self.input.dims[0]

    @property
    def height(self) -> int:
        return self.input.dims[1]

    @property
    def width(self) -> int:
        return self.input.dims[2]


def load_onnx(path: Path) -> onnx.ModelProto:
    """The model, checked by onnx.checker; ModelFileError naming the file otherwise."""
    import onnx

    if not path.is_file():
        raise ModelFileError(f"{path}: no such ONNX file")
    try:
        model = onnx.load(str(path))
        onnx.checker.check_model(model)
    except Exception as e:  # onnx raises DecodeError, ValidationError, OSError...
        raise ModelFileError(f"{path}: not a valid ONNX model ({type(e).__name__}: {e})") from None
    if not model.graph.node or not model.graph.output:
        raise ModelFileError(f"{path}: the ONNX graph is empty (no nodes or no outputs)")
    return model


def _dims(value_info: Any) -> tuple[int, ...]:
    shape = value_info.type.tensor_type.shape
    return tuple(d.dim_value if d.HasField("dim_value") else -1 for d in shape.dim)


def read_model_info(path: Path) -> ModelInfo:
    """Input (N, C, H, W) → C, H, W; outputs' dims; metadata. One input is expected."""
    model = load_onnx(path)
    initializers = {i.name for i in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in initializers]
    if len(inputs) != 1:
        names = [i.name for i in inputs]
        raise ModelFileError(f"{path}: expected one image input, found {len(inputs)}: {names}")
    dims = _dims(inputs[0])
    if len(dims) != 4:
        raise ModelFileError(
            f"{path}: input {inputs[0].name!r} should be 4-D (N, C, H, W), has shape {list(dims)}"
        )
    metadata = {p.key: p.value for p in model.metadata_props}
    height, width = _input_size(path, dims, metadata)
    channels = dims[1] if dims[1] > 0 else 3
    spec = TensorSpec(
        inputs[0].name, (channels, height, width), inputs[0].type.tensor_type.elem_type
    )
    outputs = tuple(
        TensorSpec(o.name, _dims(o)[1:], o.type.tensor_type.elem_type) for o in model.graph.output
    )
    return ModelInfo(path, spec, outputs, metadata)


def require_detector(info: ModelInfo) -> None:
    """A DetectNet_v2 detector: one coverage output ('cov' in its name) and one bbox output
    ('bbox'), each a grid N×C×H×W, as `heron export` and TAO write them. Calibrating or building
    anything else would make an engine nothing in Heron can decode: ModelFileError."""
    cov = [o for o in info.outputs if "cov" in o.name.lower()]
    bbox = [o for o in info.outputs if "bbox" in o.name.lower()]
    if len(cov) == 1 and len(bbox) == 1 and len(cov[0].dims) == 3 and len(bbox[0].dims) == 3:
        return
    found = ", ".join(f"{o.name!r} [N, {', '.join(map(str, o.dims))}]" for o in info.outputs)
    raise ModelFileError(
        f"{info.path}: not a DetectNet_v2 detector: expected one coverage output ('cov' in its "
        "name) and one bbox output ('bbox'), each [N, C, H, W], as `heron export` writes them; "
        f"found {found or 'no outputs'}"
    )


def _input_size(path: Path, dims: tuple[int, ...], metadata: dict[str, str]) -> tuple[int, int]:
    if dims[2] > 0 and dims[3] > 0:
        return dims[2], dims[3]
    if SETTINGS_METADATA_KEY in metadata:
        try:
            model = json.loads(metadata[SETTINGS_METADATA_KEY])["model"]
            return int(model["input_height"]), int(model["input_width"])
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
            raise ModelFileError(
                f"{path}: metadata {SETTINGS_METADATA_KEY!r} lacks model.input_height/width ({e})"
            ) from None
    return DEFAULT_HEIGHT, DEFAULT_WIDTH


def sha256_file(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()
