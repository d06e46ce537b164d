"""Images of any size → objects in their own pixels, found as the bus loop finds them.

The Detector API's way through the model uses the service's own Preprocessor, backend (through
`SharedBackend`) and DetectorHead, and maps boxes back with `frame_geometry(None, placement)`:
the bus loop's code for a frame the muxer did not scale. So an image sent to `Detect` gets the
boxes its pixels get as a frame on the bus: the per-class thresholds and clustering of the
nvinfer config, `filter-out-class-ids`, clipping to the image.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from heron.core.detections import Detections
from heron.core.runtime import ServiceMetrics
from heron.inference.detector import DetectorHead
from heron.inference.geometry import frame_geometry
from heron.inference.preprocess import Preprocessor
from heron.inference.request_images import Pixels
from heron.inference.shared_backend import SharedBackend
from heron.v1.detection_pb2 import DetectedObject

# The Detector API's stages: `stage="detector.infer"` apart from the bus loop's "inference.infer".
STAGE = "detector"


class ImageDetector:
    def __init__(
        self,
        preprocess: Preprocessor,
        backend: SharedBackend,
        head: DetectorHead,
        batch_size: int,
        metrics: ServiceMetrics,
    ) -> None:
        self.preprocess = preprocess
        self.backend = backend
        self.head = head
        self.batch_size = max(batch_size, 1)  # images per backend call, as in the bus loop
        self.metrics = metrics

    def detect(
        self,
        images: Sequence[Pixels],
        *,
        min_confidence: float = 0.0,
        deadline: float | None = None,
    ) -> list[Detections]:
        """Each image's objects (BGR uint8 images, any sizes), `batch_size` images per backend
        call. `min_confidence` drops objects scored below it, on top of the model's per-class
        thresholds; `deadline` (time.monotonic()) bounds the wait for the shared backend."""
        found: list[Detections] = []
        for start in range(0, len(images), self.batch_size):
            chunk = images[start : start + self.batch_size]
            found += self._detect_chunk(chunk, min_confidence, deadline)
        return found

    def _detect_chunk(
        self, images: Sequence[Pixels], min_confidence: float, deadline: float | None
    ) -> list[Detections]:
        n = len(images)
        with self.metrics.track(f"{STAGE}.preprocess", frames=n):
            batch, placements = self.preprocess(images)
        timeout = None if deadline is None else deadline - time.monotonic()
        with self.metrics.track(f"{STAGE}.infer", frames=n):
            outputs = self.backend.infer(batch, timeout)
        with self.metrics.track(f"{STAGE}.postprocess", frames=n):
            geometry = [frame_geometry(None, p) for p in placements]
            found = self.head.detections(outputs, geometry)
        if min_confidence > 0:
            found = [d[d.scores >= min_confidence] for d in found]
        return found

    def objects(self, detections: Detections) -> list[DetectedObject]:
        return self.head.objects(detections)
