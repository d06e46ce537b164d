"""A DetectNet_v2-shaped ONNX model built with onnx.helper: no torch import, so it is quick.

Input `input_1` (N, 3, H, W); outputs `output_cov/Sigmoid` (N, C, H/16, W/16) and
`output_bbox/BiasAdd` (N, 4C, H/16, W/16) — the contract of heron.training's export — from four
stride-2 3x3 convolutions with ReLU and two 1x1 heads. Weights are seeded random: for plumbing.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

INPUT_NAME = "input_1"
COV_NAME = "output_cov/Sigmoid"
BBOX_NAME = "output_bbox/BiasAdd"


def write_detector(
    path: Path, height: int, width: int, num_classes: int = 2, seed: int = 0
) -> Path:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    nodes, weights = [], []
    channels, last = 3, INPUT_NAME

    def conv(name: str, x: str, c_in: int, c_out: int, *, k: int, stride: int, scale: float) -> str:
        w = (rng.standard_normal((c_out, c_in, k, k)) * scale).astype(np.float32)
        b = np.zeros(c_out, np.float32)
        weights.extend(
            [numpy_helper.from_array(w, f"{name}.w"), numpy_helper.from_array(b, f"{name}.b")]
        )
        nodes.append(
            helper.make_node(
                "Conv",
                [x, f"{name}.w", f"{name}.b"],
                [name],
                kernel_shape=[k, k],
                strides=[stride, stride],
                pads=[k // 2] * 4,
            )
        )
        return name

    for i, c_out in enumerate((8, 16, 16, 32)):
        out = conv(
            f"conv{i}", last, channels, c_out, k=3, stride=2, scale=(2 / (9 * channels)) ** 0.5
        )
        nodes.append(helper.make_node("Relu", [out], [f"relu{i}"]))
        last, channels = f"relu{i}", c_out
    cov = conv("cov", last, channels, num_classes, k=1, stride=1, scale=1.0)
    nodes.append(helper.make_node("Sigmoid", [cov], [COV_NAME]))
    conv(BBOX_NAME, last, channels, 4 * num_classes, k=1, stride=1, scale=10.0)
    graph = helper.make_graph(
        nodes,
        "tiny_detectnet",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, ["batch", 3, height, width])],
        [
            helper.make_tensor_value_info(COV_NAME, TensorProto.FLOAT, ["batch", None, None, None]),
            helper.make_tensor_value_info(
                BBOX_NAME, TensorProto.FLOAT, ["batch", None, None, None]
            ),
        ],
        weights,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path
