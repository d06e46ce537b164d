"""The request messages of the client's methods, built in one place for both clients."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator, Mapping, Sequence

from heron.client.images import ChannelOrder, ImageError, ImageInput, to_images
from heron.v1 import control_pb2, detector_pb2, stream_pb2

# SetModelVersions' deadline: loading a model takes longer than a unary call's usual 10 s. The
# control service waits at most its pipeline_api.model_load_timeout_s (default 120 s) anyway.
MODEL_LOAD_DEADLINE_S = 120.0


def subscribe_request(
    *,
    stream_ids: Iterable[str],
    classes: Iterable[str],
    min_confidence: float,
    after: str,
    from_oldest: bool,
) -> control_pb2.SubscribeRequest:
    return control_pb2.SubscribeRequest(
        stream_ids=list(stream_ids),
        classes=list(classes),
        min_confidence=min_confidence,
        after=after,
        from_oldest=from_oldest,
    )


def add_source_request(
    source: str | stream_pb2.SourceSpec, *, stream_id: str
) -> control_pb2.AddSourceRequest:
    """`source` is a URI (the server fills in the rest) or a whole SourceSpec."""
    spec = stream_pb2.SourceSpec()
    if isinstance(source, str):
        spec.uri = source
    else:
        spec.CopyFrom(source)
    if stream_id:
        spec.stream_id = stream_id
    return control_pb2.AddSourceRequest(source=spec)


def set_parameters_request(
    thresholds: Mapping[int, float], interval: int | None
) -> control_pb2.SetParametersRequest:
    request = control_pb2.SetParametersRequest(
        thresholds=[
            control_pb2.ClassThreshold(class_id=class_id, pre_cluster_threshold=threshold)
            for class_id, threshold in sorted(thresholds.items())
        ]
    )
    if interval is not None:
        request.interval = interval
    return request


def set_model_versions_request(
    default_version: str, stream_versions: Mapping[str, str], requested_by: str
) -> control_pb2.SetModelVersionsRequest:
    return control_pb2.SetModelVersionsRequest(
        default_version=default_version,
        stream_versions=dict(stream_versions),
        requested_by=requested_by,
    )


def detect_request(
    images: Sequence[ImageInput], *, min_confidence: float, order: ChannelOrder
) -> detector_pb2.DetectRequest:
    return detector_pb2.DetectRequest(
        images=to_images(images, order=order), min_confidence=min_confidence
    )


class DetectFeed:
    """The requests of a DetectStream, built as gRPC asks for them. An image the client cannot
    send ends the call; it is kept here so the caller gets that ImageError, not the
    cancellation gRPC turns it into."""

    def __init__(self, *, min_confidence: float, order: ChannelOrder) -> None:
        self._min_confidence = min_confidence
        self._order = order
        self.error: ImageError | None = None

    def _request(self, batch: Sequence[ImageInput]) -> detector_pb2.DetectRequest:
        try:
            return detect_request(batch, min_confidence=self._min_confidence, order=self._order)
        except ImageError as e:
            self.error = e
            raise

    def requests(
        self, batches: Iterable[Sequence[ImageInput]]
    ) -> Iterator[detector_pb2.DetectRequest]:
        for batch in batches:
            yield self._request(batch)

    async def async_requests(
        self, batches: Iterable[Sequence[ImageInput]] | AsyncIterable[Sequence[ImageInput]]
    ) -> AsyncIterator[detector_pb2.DetectRequest]:
        if isinstance(batches, AsyncIterable):
            async for batch in batches:
                yield self._request(batch)
        else:
            for batch in batches:
                yield self._request(batch)
