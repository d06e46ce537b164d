"""Reading a detector ONNX: input size from the graph or the export's metadata; bad files get a
clear error naming the file."""

from __future__ import annotations

import json
from pathlib import Path

import onnx
import pytest
from heron.core.model_metadata import SETTINGS_METADATA_KEY
from heron.engine.errors import ModelFileError
from heron.engine.model_info import read_model_info
from onnx import TensorProto, helper


def _model(path: Path, shape: list[int | str], metadata: dict[str, str] | None = None) -> Path:
    x = helper.make_tensor_value_info("input_1", TensorProto.FLOAT, shape)
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)
    graph = helper.make_graph([helper.make_node("Relu", ["input_1"], ["y"])], "g", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    for key, value in (metadata or {}).items():
        model.metadata_props.add(key=key, value=value)
    onnx.save(model, str(path))
    return path


@pytest.mark.parametrize(
    ("shape", "metadata", "size"),
    [
        (["N", 3, 64, 128], None, (64, 128)),
        (["N", 3, "H", "W"], {"model": {"input_height": 72, "input_width": 96}}, (72, 96)),
        (["N", 3, "H", "W"], None, (544, 960)),  # DetectNet_v2's default
    ],
)
def test_input_size(
    shape: list[int | str],
    metadata: dict[str, object] | None,
    size: tuple[int, int],
    tmp_path: Path,
) -> None:
    meta = {SETTINGS_METADATA_KEY: json.dumps(metadata)} if metadata else None
    info = read_model_info(_model(tmp_path / "m.onnx", shape, meta))
    assert (info.height, info.width, info.channels) == (*size, 3)
    assert info.input.name == "input_1" and [o.name for o in info.outputs] == ["y"]


def test_detector_export_layout(detector_onnx: Path) -> None:
    info = read_model_info(detector_onnx)
    assert info.input.dims == (3, 128, 224)
    assert {o.name: o.dims for o in info.outputs} == {
        "output_cov/Sigmoid": (2, 8, 14),
        "output_bbox/BiasAdd": (8, 8, 14),
    }


def test_bad_files(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match="no such ONNX file"):
        read_model_info(tmp_path / "missing.onnx")
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"\x00\x01not a model")
    with pytest.raises(ModelFileError, match=r"garbage.onnx: not a valid ONNX model"):
        read_model_info(garbage)
    empty = tmp_path / "empty.onnx"
    empty.write_bytes(b"\x08\x07")  # a ModelProto with an IR version and nothing else
    with pytest.raises(ModelFileError, match=r"empty\.onnx: "):
        read_model_info(empty)
    with pytest.raises(ModelFileError, match=r"should be 4-D \(N, C, H, W\), has shape \[-1, 3\]"):
        read_model_info(_model(tmp_path / "flat.onnx", ["N", 3]))
    bad_meta = {SETTINGS_METADATA_KEY: "{not json"}
    with pytest.raises(ModelFileError, match=r"lacks model\.input_height/width"):
        read_model_info(_model(tmp_path / "meta.onnx", ["N", 3, "H", "W"], bad_meta))
