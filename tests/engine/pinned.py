"""Inputs whose INT8 scales are pinned in tests/engine/data/pinned_scales.json: made from
seeded numpy streams only (no torch, no shared data), so the same everywhere.

- `activation_batches`: synthetic activations fed straight to the HistogramCollector, batch by
  batch (ReLU-like, long-tailed, growing from batch to batch so the histogram widens, all
  zero at first, negative only);
- `pinned_model` / `pinned_images`: a small conv net as ONNX (numpy weights) and seeded noise
  images, for `calibrate()` end to end.

The expected values were computed with the calibration code before its speed-up (issue 18,
item 4); `test_pinned_scales.py` checks the current code gives them to 1e-6 relative.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

PINNED_FILE = Path(__file__).parent / "data" / "pinned_scales.json"
METHODS = (("minmax", 0.0), ("percentile", 99.99), ("percentile", 99.999), ("entropy", 0.0))
HEIGHT, WIDTH = 64, 96
IMAGES, BATCHES, BATCH_SIZE = 12, 3, 4


def method_key(method: str, percentile: float) -> str:
    return f"percentile {percentile}" if method == "percentile" else method


def activation_batches() -> Iterator[list[tuple[str, np.ndarray]]]:
    rng = np.random.default_rng(18)
    for batch in range(4):
        growth = 1.0 + batch  # later batches reach further: the histograms widen
        yield [
            ("relu", np.maximum(rng.normal(0.0, growth, (4, 8, 16, 16)), 0).astype(np.float32)),
            ("laplace", rng.laplace(0.0, 1.0, (4, 4096)).astype(np.float32)),
            ("zeros_first", (batch * rng.normal(0.0, 1.0, (2, 1000))).astype(np.float32)),
            ("negative", -np.abs(rng.standard_t(3, 5000) * growth).astype(np.float32)),
            ("uniform", rng.uniform(-3.0, 5.0, 3000).astype(np.float32)),
        ]


def pinned_model(path: Path) -> Path:
    """Conv-ReLU ×2 (stride 2), then 1×1 heads: `output_cov/Sigmoid` and `output_bbox/BiasAdd`."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(7)

    def weight(name: str, shape: tuple[int, ...], scale: float) -> onnx.TensorProto:
        return numpy_helper.from_array((rng.normal(0, scale, shape)).astype(np.float32), name)

    inits = [
        weight("w1", (8, 3, 3, 3), 0.4), weight("b1", (8,), 0.1),
        weight("w2", (16, 8, 3, 3), 0.2), weight("b2", (16,), 0.1),
        weight("wc", (2, 16, 1, 1), 0.3), weight("bc", (2,), 0.1),
        weight("wb", (8, 16, 1, 1), 0.3), weight("bb", (8,), 0.1),
    ]  # fmt: skip

    def conv(inputs: list[str], output: str) -> onnx.NodeProto:
        return helper.make_node(
            "Conv", inputs, [output], name=output, kernel_shape=[3, 3], strides=[2, 2],
            pads=[1, 1, 1, 1],
        )  # fmt: skip

    nodes = [
        conv(["input_1", "w1", "b1"], "c1"),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        conv(["r1", "w2", "b2"], "c2"),
        helper.make_node("Relu", ["c2"], ["r2"], name="relu2"),
        helper.make_node("Conv", ["r2", "wc", "bc"], ["cov"], name="cov"),
        helper.make_node("Sigmoid", ["cov"], ["output_cov/Sigmoid"], name="sigmoid"),
        helper.make_node("Conv", ["r2", "wb", "bb"], ["output_bbox/BiasAdd"], name="bbox"),
    ]
    h, w = HEIGHT // 4, WIDTH // 4
    graph = helper.make_graph(
        nodes,
        "pinned",
        [helper.make_tensor_value_info("input_1", TensorProto.FLOAT, ["N", 3, HEIGHT, WIDTH])],
        [
            helper.make_tensor_value_info("output_cov/Sigmoid", TensorProto.FLOAT, ["N", 2, h, w]),
            helper.make_tensor_value_info("output_bbox/BiasAdd", TensorProto.FLOAT, ["N", 8, h, w]),
        ],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def pinned_images(folder: Path) -> Path:
    """IMAGES seeded noise PNGs (lossless: the decoded pixels are the generated ones)."""
    import cv2

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(11)
    for index in range(IMAGES):
        base = rng.integers(0, 256, (HEIGHT // 8, WIDTH // 8, 3)).astype(np.uint8)
        smooth = cv2.resize(base, (WIDTH, HEIGHT), interpolation=cv2.INTER_LINEAR)
        noise = rng.integers(-20, 21, smooth.shape)
        picture = np.clip(smooth.astype(np.int64) + noise, 0, 255).astype(np.uint8)
        cv2.imwrite(str(folder / f"{index:03d}.png"), picture)
    return folder
