"""The Detector gRPC service (protos/heron/v1/detector.proto) of the inference service.

`Detect` takes a batch of images (JPEG, PNG, or raw BGR24/RGB24/GRAY8) and answers each one's
objects in its own pixels; `DetectStream` answers each request of a stream, in order;
`GetModel` says what the service runs. Errors, raised as the kit's types so its interceptor
maps them (never a traceback on the wire):

- INVALID_ARGUMENT naming the field: no images; more than `detect_max_images` images (a fixed
  limit of this server: retrying the same request never helps, so not RESOURCE_EXHAUSTED,
  which gRPC itself answers for a message over `grpc.max_receive_message_mb`);
  `images[i]...` that cannot be decoded, has no data, a raw length that does not match its
  size and format, or more than `detect_max_image_pixels` pixels; `min_confidence` outside
  0..1. The whole request is checked before any image is inferred.
- UNAVAILABLE: the backend cannot serve now (Triton down or restarting): retry later.
- DEADLINE_EXCEEDED: the call's deadline passed while it waited for the shared backend.

In `DetectStream` the first error ends the stream with its status; every earlier request has
been answered.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence

import grpc

from heron.core.grpc.errors import InvalidArgumentError, UnavailableError
from heron.inference.errors import BackendUnavailableError
from heron.inference.image_detector import ImageDetector
from heron.inference.request_images import check_image, to_bgr
from heron.inference.shared_backend import BackendBusyError
from heron.v1 import detector_pb2_grpc
from heron.v1.detector_pb2 import (
    DetectRequest,
    DetectResponse,
    GetModelRequest,
    Image,
    ImageDetections,
    ModelInfo,
)

# Past this, a call's time remaining is "no deadline" (gRPC reports ~forever for one without).
NO_DEADLINE_S = 24 * 3600.0
SERVICE_NAME: str = ModelInfo.DESCRIPTOR.file.services_by_name["Detector"].full_name


class InferenceDetectorServicer(detector_pb2_grpc.DetectorServicer):
    """The Detector service over the inference service's model (`ImageDetector`)."""

    def __init__(
        self, detector: ImageDetector, model: ModelInfo, *, max_images: int, max_image_pixels: int
    ) -> None:
        self.detector = detector
        self.model = model
        self.max_images = max_images
        self.max_image_pixels = max_image_pixels

    def Detect(  # noqa: N802 (the RPC's name)
        self, request: DetectRequest, context: grpc.ServicerContext
    ) -> DetectResponse:
        return self._detect(request, context)

    def DetectStream(  # noqa: N802
        self, request_iterator: Iterator[DetectRequest], context: grpc.ServicerContext
    ) -> Iterator[DetectResponse]:
        for request in request_iterator:
            yield self._detect(request, context)

    def GetModel(  # noqa: N802
        self, request: GetModelRequest, context: grpc.ServicerContext
    ) -> ModelInfo:
        return self.model

    # --- one request --------------------------------------------------------------------

    def _detect(self, request: DetectRequest, context: grpc.ServicerContext) -> DetectResponse:
        self._check(request)
        remaining = context.time_remaining()  # a call without a deadline: None, or ~forever
        forever = remaining is None or remaining > NO_DEADLINE_S
        deadline = None if forever else time.monotonic() + remaining
        images = request.images
        results: list[ImageDetections] = []
        size = self.detector.batch_size
        for start in range(0, len(images), size):
            # Decoded a chunk at a time: a request holds one chunk of full-size pixels at once.
            results += self._detect_chunk(
                images[start : start + size], start, request, context, deadline
            )
        return DetectResponse(
            results=results, model_name=self.model.name, model_version=self.model.version
        )

    def _check(self, request: DetectRequest) -> None:
        n = len(request.images)
        if n == 0:
            raise InvalidArgumentError("images", "expected at least one image, got none")
        if n > self.max_images:
            raise InvalidArgumentError(
                "images",
                f"expected at most {self.max_images} images in one request "
                f"(detect_max_images), got {n}: send them in several requests",
            )
        confidence = request.min_confidence
        if not 0.0 <= confidence <= 1.0:  # NaN fails too
            raise InvalidArgumentError(
                "min_confidence",
                f"expected 0..1 (0: the model's per-class thresholds alone), got {confidence}",
            )
        for i, image in enumerate(request.images):
            check_image(image, f"images[{i}]", self.max_image_pixels)

    def _detect_chunk(
        self,
        images: Sequence[Image],
        start: int,
        request: DetectRequest,
        context: grpc.ServicerContext,
        deadline: float | None,
    ) -> list[ImageDetections]:
        pixels = [to_bgr(image, f"images[{start + k}]") for k, image in enumerate(images)]
        try:
            found = self.detector.detect(
                pixels, min_confidence=request.min_confidence, deadline=deadline
            )
        except BackendUnavailableError as e:
            raise UnavailableError(f"the model cannot serve now, retry later: {e}") from e
        except BackendBusyError as e:  # the client has had DEADLINE_EXCEEDED already
            context.abort(grpc.StatusCode.DEADLINE_EXCEEDED, str(e))
        return [
            ImageDetections(
                id=image.id,
                width=p.shape[1],
                height=p.shape[0],
                objects=self.detector.objects(d),
            )
            for image, p, d in zip(images, pixels, found, strict=True)
        ]
