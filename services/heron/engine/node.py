"""This node's identity for TensorRT plans: the installed flavour's version and the GPU."""

from __future__ import annotations

from heron.engine.builders import get_builder
from heron.engine.gpu import gpu_info
from heron.engine.plan_meta import Flavour, NodeInfo


def detect_node(flavour: Flavour, gpu: int = 0) -> NodeInfo:
    """This node's NodeInfo: the installed TensorRT flavour's version and GPU `gpu`."""
    trt = get_builder(flavour).load()
    name, capability = gpu_info(gpu)
    return NodeInfo(
        flavour=flavour,
        trt_version=str(trt.__version__),
        gpu_name=name,
        compute_capability=capability,
    )
