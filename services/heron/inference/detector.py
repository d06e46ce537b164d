"""DetectNet_v2 outputs → per-frame objects, with the nvinfer config's clustering per class.

Uses heron.postprocess (the module training's evaluation uses too): grid decode with the bbox
coding, per-class `[class-attrs-N]` thresholds and `cluster-mode`, boxes mapped back to each
original frame, then `filter-out-class-ids`.

Per-class pre-cluster thresholds may be overridden at run time (SetParameters, see
heron.inference.parameters): the overrides sit on top of the config's `[class-attrs-N]` and
survive the head's lazy set-up from the first output.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from heron.core.boxes import clip_boxes
from heron.core.config.nvinfer_models import CLUSTER_MODES, NvInferConfig
from heron.core.detections import Detections
from heron.core.model_metadata import SETTINGS_METADATA_KEY
from heron.inference.backends.base import FloatArray, ModelInfo
from heron.inference.errors import ModelMismatchError
from heron.postprocess import (
    BBoxCoding,
    ClusterParams,
    ClusterParamsError,
    FrameGeometry,
    postprocess,
)
from heron.v1.detection_pb2 import DetectedObject

log = logging.getLogger(__name__)

DISPLAY_ONLY = {"border_color", "bg_color"}


@dataclass(frozen=True)
class OutputNames:
    coverage: str
    bbox: str


def find_outputs(info: ModelInfo, wanted: Sequence[str]) -> OutputNames:
    """Which outputs are coverage and bbox: by name (`cov`/`bbox`) among output-blob-names."""
    names = [n for n in (wanted or info.output_names)]
    missing = [n for n in names if n not in info.output_names]
    if missing:
        raise ModelMismatchError(
            f"output-blob-names {missing} are not outputs of model {info.name!r} "
            f"(it has {list(info.output_names)})"
        )
    cov = [n for n in names if "cov" in n.lower()]
    bbox = [n for n in names if "bbox" in n.lower()]
    if len(cov) != 1 or len(bbox) != 1:
        raise ModelMismatchError(
            f"expected one coverage ('cov') and one bbox output among {names}, "
            f"found coverage {cov} and bbox {bbox}"
        )
    return OutputNames(cov[0], bbox[0])


def bbox_coding(
    info: ModelInfo, grid: tuple[int, int], scale: float | None, offset: float | None
) -> BBoxCoding:
    """Stride from the input and grid sizes; scale/offset from settings, ONNX metadata, TAO's."""
    _, h, w = info.input_shape
    gh, gw = grid
    if w % gw or h % gh or w // gw != h // gh:
        raise ModelMismatchError(
            f"input {w}x{h} and output grid {gw}x{gh} do not share one integer stride"
        )
    model = _metadata_model(info)
    return BBoxCoding(
        stride=w // gw,
        scale=scale if scale is not None else float(model.get("bbox_scale", 35.0)),
        offset=offset if offset is not None else float(model.get("bbox_offset", 0.5)),
    )


def _metadata_model(info: ModelInfo) -> dict[str, float]:
    raw = info.metadata.get(SETTINGS_METADATA_KEY)
    if raw is None:
        return {}
    try:
        model = json.loads(raw).get("model", {})
    except (json.JSONDecodeError, AttributeError):
        log.warning("model %r: ignoring unreadable %s metadata", info.name, SETTINGS_METADATA_KEY)
        return {}
    return {k: v for k, v in model.items() if k in ("bbox_scale", "bbox_offset")}


def cluster_params(config: NvInferConfig, num_classes: int) -> list[ClusterParams]:
    """One ClusterParams per class from `[class-attrs-*]` and `[property] cluster-mode`."""
    modes = {name: number for number, name in CLUSTER_MODES.items()}
    mode = modes[config.property.cluster_mode]
    params = []
    for k in range(num_classes):
        attrs = config.class_attrs.get(k, config.class_attrs_all)
        try:
            params.append(
                ClusterParams.from_nvinfer_keys(
                    attrs.model_dump(exclude=DISPLAY_ONLY), cluster_mode=mode
                )
            )
        except ClusterParamsError as e:
            raise ModelMismatchError(f"[class-attrs-{k}]: {e}") from e
    return params


def with_thresholds(
    params: Sequence[ClusterParams], thresholds: Mapping[int, float]
) -> list[ClusterParams]:
    """`params` with the pre-cluster thresholds of `thresholds` (class id → threshold) in
    place of the config's; ids past the model's classes are left out (callers validate)."""
    return [
        p.model_copy(update={"pre_cluster_threshold": thresholds[k]}) if k in thresholds else p
        for k, p in enumerate(params)
    ]


class DetectorHead:
    """Turns one batch of outputs into per-frame DetectedObject lists.

    The bus loop and the Detector API's threads share one head, and a SetParameters command
    changes its thresholds from a third: the per-class parameters are one list, swapped whole
    under a lock, so a batch is decoded with the old set or the new one, never a mix.
    """

    def __init__(
        self,
        config: NvInferConfig,
        info: ModelInfo,
        *,
        bbox_scale: float | None = None,
        bbox_offset: float | None = None,
    ) -> None:
        self.outputs = find_outputs(info, config.property.output_blob_names)
        self.config = config
        self.info = info
        self.labels = list(config.labels)
        self.component_id = config.property.gie_unique_id
        self.filter_out = set(config.property.filter_out_class_ids)
        self._params: list[ClusterParams] | None = None
        self._coding: BBoxCoding | None = None
        self._scale, self._offset = bbox_scale, bbox_offset
        self._lock = threading.Lock()
        self._thresholds: dict[int, float] = {}  # run-time pre-cluster-threshold overrides

    @property
    def num_classes(self) -> int:
        """The classes the model detects: its coverage channels once an output was seen, else
        the config's num-detected-classes, which `_setup` holds the model to. (Not the labels:
        a labels file may name more or fewer classes than the model has.)"""
        with self._lock:
            if self._params is not None:
                return len(self._params)
        declared = self.config.property.num_detected_classes
        return declared if declared is not None else len(self.labels)

    @property
    def thresholds(self) -> dict[int, float]:
        """The run-time pre-cluster-threshold overrides in force (class id → threshold)."""
        with self._lock:
            return dict(self._thresholds)

    def set_thresholds(self, thresholds: Mapping[int, float]) -> None:
        """Replace the run-time overrides with `thresholds` (an empty mapping: the config's
        thresholds again). Decoding started before keeps the old set; the next uses these."""
        with self._lock:
            self._thresholds = dict(thresholds)
            if self._params is not None:  # built already: rebuild from the config, then override
                base = cluster_params(self.config, len(self._params))
                self._params = with_thresholds(base, self._thresholds)

    def _setup(self, cov: FloatArray) -> tuple[list[ClusterParams], BBoxCoding]:
        """Parameters fixed by the first output seen (its class count and grid)."""
        with self._lock:
            if self._params is None or self._coding is None:
                classes = cov.shape[1]
                expected = self.config.property.num_detected_classes
                if expected is not None and expected != classes:
                    raise ModelMismatchError(
                        f"num-detected-classes is {expected} but {self.outputs.coverage!r} has "
                        f"{classes} channels"
                    )
                params = cluster_params(self.config, classes)
                self._params = with_thresholds(params, self._thresholds)
                self._coding = bbox_coding(self.info, cov.shape[2:4], self._scale, self._offset)
            return self._params, self._coding

    def detections(
        self, outputs: dict[str, FloatArray], frames: Sequence[FrameGeometry]
    ) -> list[Detections]:
        cov, bbox = outputs[self.outputs.coverage], outputs[self.outputs.bbox]
        params, coding = self._setup(cov)
        _, h, w = self.info.input_shape
        found = postprocess(cov, bbox, params, coding=coding, input_size=(w, h), frames=frames)
        drop = np.asarray(sorted(self.filter_out), np.int64)
        return [
            self._finish(d, f, drop).with_class_names(self.labels)
            for d, f in zip(found, frames, strict=True)
        ]

    @staticmethod
    def _finish(found: Detections, frame: FrameGeometry, drop: NDArray[np.int64]) -> Detections:
        """Clip to the frame (a box reaching into letterbox padding ends at the image edge)
        and apply filter-out-class-ids."""
        boxes = clip_boxes(found.xyxy, frame.frame_width, frame.frame_height)
        keep = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
        if drop.size:
            keep &= ~np.isin(found.class_ids, drop)
        return Detections(boxes[keep], found.scores[keep], found.class_ids[keep])

    def objects(self, detections: Detections) -> list[DetectedObject]:
        """The frame's metadata objects (labels come with `detections`)."""
        return detections.to_proto(self.component_id)
