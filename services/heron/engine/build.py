"""One build path for both TensorRT flavours: ONNX parser → network checks → optimisation
profile → flavour-specific precision/targets → serialised plan + metadata.

The flavour (builders/tensorrt.py, builders/tensorrt_rtx.py) supplies the `tensorrt` or
`tensorrt_rtx` module — their Python APIs are the same where this file uses them — and decides
precision, calibration and targets. TensorRT modules are imported only when a build runs.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from heron.engine.builders.base import Builder
from heron.engine.errors import BuildError, ParseError
from heron.engine.model_info import ModelInfo, read_model_info, sha256_file
from heron.engine.options import BuildOptions
from heron.engine.plan_meta import InputShapes, PlanMetadata


@dataclass(frozen=True)
class BuiltPlan:
    plan: bytes
    metadata: PlanMetadata
    info: ModelInfo


def _logger(trt: Any) -> Any:
    """An ILogger that keeps warnings and errors, to put the first error into ours."""

    class Logger(trt.ILogger):  # type: ignore[misc]
        def __init__(self) -> None:
            trt.ILogger.__init__(self)
            self.errors: list[str] = []

        def log(self, severity: Any, msg: str) -> None:
            if severity in (trt.ILogger.ERROR, trt.ILogger.INTERNAL_ERROR):
                self.errors.append(msg)

    return Logger()


def parse_network(trt: Any, builder: Any, logger: Any, source: Path) -> tuple[Any, Any]:
    """(network, parser); ParseError with node, operator and message of each parser error."""
    # TensorRT 8.x needs the explicit-batch flag; 10.x and TensorRT-RTX have only explicit batch.
    legacy = trt.__name__ == "tensorrt" and int(trt.__version__.split(".")[0]) < 10
    flags = 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH) if legacy else 0
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(source)):
        # Without a GPU every error is followed by a spurious CUDA error: the first ones count.
        errors = [parser.get_error(i) for i in range(parser.num_errors)]
        lines = [
            f"node {e.node()} ({e.node_name() or '?'}, op {e.node_operator() or '?'}): {e.desc()}"
            for e in errors
        ]
        raise ParseError(f"{source}: TensorRT's ONNX parser failed: " + "; ".join(lines))
    if network.num_outputs == 0 or network.num_layers == 0:
        raise ParseError(f"{source}: parsed to an empty network (no layers or outputs)")
    return network, parser


def build_plan(options: BuildOptions, flavour: Builder) -> BuiltPlan:
    """Build a serialised engine; ParseError / BuildError say what went wrong."""
    trt = flavour.load()
    info = read_model_info(options.onnx)
    started = time.perf_counter()
    logger = _logger(trt)
    with tempfile.TemporaryDirectory(prefix="heron-build-") as tmp:
        source = flavour.network_source(options, info, Path(tmp))
        builder = trt.Builder(logger)
        network, _parser = parse_network(trt, builder, logger, source)
        config = builder.create_builder_config()
        profile = builder.create_optimization_profile()
        shapes = []
        for i in range(network.num_inputs):
            tensor = network.get_input(i)
            chw = list(tensor.shape)[1:]
            shape = InputShapes(
                name=tensor.name,
                min=[options.min_batch, *chw],
                opt=[options.opt_batch, *chw],
                max=[options.max_batch, *chw],
            )
            profile.set_shape(tensor.name, shape.min, shape.opt, shape.max)
            shapes.append(shape)
        config.add_optimization_profile(profile)
        flavour.configure(trt, config, profile, options)
        serialized = builder.build_serialized_network(network, config)
        if serialized is None:
            first = logger.errors[0] if logger.errors else "no message from TensorRT"
            raise BuildError(f"{options.onnx}: {flavour.name} could not build an engine: {first}")
        flavour.finish(trt, config, options)
    plan = bytes(memoryview(serialized))
    meta = PlanMetadata(
        flavour=flavour.name,
        trt_version=str(trt.__version__),
        precision=options.precision,
        inputs=shapes,
        onnx_sha256=sha256_file(options.onnx),
        calibration_sha256=sha256_file(options.calib_cache) if options.calib_cache else None,
        build_seconds=round(time.perf_counter() - started, 3),
        plan_bytes=len(plan),
        **flavour.describe(trt, options),
    )
    return BuiltPlan(plan, meta, info)
