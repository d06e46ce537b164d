"""DetectNet_v2 postprocessing shared by training evaluation and streaming inference.

Grid decode (`grid`), nvinfer's cluster modes (`cluster`), per-class parameters (`params`) and the
one entry point `postprocess`, producing the checked `Detections` type (defined in
`heron.core.detections`, re-exported here as postprocess's result). numpy, OpenCV, SciPy and
scikit-learn only: no torch, so the inference service can use it as is.
"""

from heron.core.detections import Detections, DetectionsError
from heron.postprocess.grid import (
    BBoxCoding,
    GridShapeError,
    decode_bbox,
    encode_bbox,
    grid_centers,
)
from heron.postprocess.params import ClusterMode, ClusterParams, ClusterParamsError
from heron.postprocess.pipeline import FrameGeometry, postprocess

__all__ = [
    "BBoxCoding",
    "ClusterMode",
    "ClusterParams",
    "ClusterParamsError",
    "Detections",
    "DetectionsError",
    "FrameGeometry",
    "GridShapeError",
    "decode_bbox",
    "encode_bbox",
    "grid_centers",
    "postprocess",
]
