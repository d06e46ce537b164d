"""The blocking client against a real gRPC server (the kit's, serving fakes): every method,
each status code as its typed error and message, the token, TLS and mutual TLS."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from heron.client import (
    AlreadyExistsError,
    Client,
    ClientSettings,
    ClientTls,
    DeadlineExceededError,
    HeronClientError,
    ImageError,
    InvalidRequestError,
    NotFoundError,
    PermissionDeniedError,
    ResourceExhaustedError,
    ServerError,
    ServerUnavailableError,
    UnauthenticatedError,
    UnimplementedError,
)
from heron.core.grpc import TlsSettings
from heron.core.grpc.server import start_server
from heron.core.grpc.settings import GrpcServerSettings
from heron.v1 import control_pb2, frame_pb2
from pydantic import ValidationError

from tests.client.client_fakes import MODEL, Fakes, serving, start
from tests.core.grpc.certs import Certs, make_certs
from tests.support.redis_server import free_port

# The smallest valid PNG: 1x1, grey.
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010800000000"
    "3a7e9b550000000a49444154789c63600000000200010d0a2db40000000049454e44ae426082"
)


@pytest.fixture
def fakes() -> Fakes:
    return Fakes()


@pytest.fixture
def client(fakes: Fakes) -> Iterator[Client]:
    with serving(fakes) as server, Client(f"127.0.0.1:{server.port}") as client:
        yield client


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return make_certs(tmp_path_factory.mktemp("pki"))


# -- Pipeline ------------------------------------------------------------------------------


def test_pipeline_methods_round_trip(client: Client, fakes: Fakes) -> None:
    added = client.add_source("file:///clip.mp4", stream_id="cam-1")
    assert added.source.stream_id == "cam-1"
    assert added.state == control_pb2.SOURCE_STATE_CONNECTING
    assert client.add_source("rtsp://camera/live").source.stream_id == "source-1"
    assert [s.source.stream_id for s in client.list_sources()] == ["cam-1", "source-1"]
    assert client.get_source("cam-1").source.uri == "file:///clip.mp4"
    assert client.remove_source("cam-1").frames == 250
    assert [s.source.stream_id for s in client.list_sources()] == ["source-1"]
    status = client.get_status()
    assert status.pipeline == "face-mask"
    assert [s.serving for s in status.services] == [True, False]
    assert len(list(client.watch_status(interval_s=0.01))) == 3
    client.set_parameters(thresholds={1: 0.6, 0: 0.4}, interval=2)
    (sent,) = fakes.pipeline.parameters
    assert [(t.class_id, round(t.pre_cluster_threshold, 3)) for t in sent.thresholds] == [
        (0, 0.4),
        (1, 0.6),
    ]
    assert sent.HasField("interval")
    assert sent.interval == 2


def test_model_versions_round_trip(client: Client, fakes: Fakes) -> None:
    assert client.get_model_versions().default_version == "3"
    routing = client.set_model_versions(stream_versions={"cam-1": "4"}, requested_by="canary")
    assert (dict(routing.stream_versions), list(routing.loaded)) == ({"cam-1": "4"}, ["3", "4"])
    (sent,) = fakes.pipeline.versions
    assert (sent.default_version, sent.requested_by) == ("", "canary")
    assert client.get_model_versions() == routing
    with pytest.raises(NotFoundError, match="version 9: no such version"):
        client.set_model_versions(default_version="9")


def test_set_parameters_without_interval_leaves_it_unset(client: Client, fakes: Fakes) -> None:
    client.set_parameters(thresholds={0: 0.5})
    assert not fakes.pipeline.parameters[0].HasField("interval")


# -- status codes --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stream_id", "kind", "code", "message"),
    [
        ("missing", NotFoundError, "NOT_FOUND", "not found: no stream 'missing'"),
        (
            "bad",
            InvalidRequestError,
            "INVALID_ARGUMENT",
            "invalid request: stream_id: expected letters, digits, '-' or '_'",
        ),
        (
            "down",
            ServerUnavailableError,
            "UNAVAILABLE",
            "the Heron server at {target} is unavailable: the bus does not answer",
        ),
        (
            "crash",
            ServerError,
            "INTERNAL",
            "the Heron server at {target} failed (INTERNAL): internal error; see the server's log",
        ),
        ("abort:ALREADY_EXISTS", AlreadyExistsError, "ALREADY_EXISTS", "already exists: "),
        (
            "abort:PERMISSION_DENIED",
            PermissionDeniedError,
            "PERMISSION_DENIED",
            "the Heron server at {target} denied heron.v1.Pipeline/GetSource: ",
        ),
        ("abort:OUT_OF_RANGE", InvalidRequestError, "OUT_OF_RANGE", "invalid request: "),
        ("abort:RESOURCE_EXHAUSTED", ResourceExhaustedError, "RESOURCE_EXHAUSTED", "refused"),
        (
            "abort:FAILED_PRECONDITION",
            ServerError,
            "FAILED_PRECONDITION",
            "failed (FAILED_PRECONDITION): FAILED_PRECONDITION from the fake",
        ),
    ],
)
def test_each_status_code_is_its_error(
    client: Client, stream_id: str, kind: type[HeronClientError], code: str, message: str
) -> None:
    with pytest.raises(kind) as caught:
        client.get_source(stream_id)
    assert caught.value.code == code
    assert message.format(target=client.settings.target) in str(caught.value)
    assert "Traceback" not in str(caught.value)
    assert "a bug" not in str(caught.value)


def test_a_refused_field_is_named(client: Client) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        client.add_source("")
    assert caught.value.field == "source.uri"
    assert isinstance(caught.value, ValueError)


def test_a_missed_deadline(fakes: Fakes) -> None:
    with serving(fakes) as server:
        settings = ClientSettings(target=f"127.0.0.1:{server.port}", deadline_s=0.3)
        with Client(settings) as client, pytest.raises(DeadlineExceededError) as caught:
            client.get_source("slow")
    assert str(caught.value).endswith("did not answer heron.v1.Pipeline/GetSource within 0.3 s")
    assert isinstance(caught.value, TimeoutError)


def test_a_method_the_server_does_not_serve(fakes: Fakes) -> None:
    detector_only = fakes.bindings()[2:]
    running = start_server(GrpcServerSettings(listen="127.0.0.1:0", grace_s=0), detector_only)
    try:
        with Client(f"127.0.0.1:{running.port}") as client:
            assert client.get_model().name == MODEL.name
            with pytest.raises(
                UnimplementedError, match=r"does not serve heron\.v1\.Pipeline/GetStatus"
            ):
                client.get_status()
    finally:
        running.stop()


def test_a_message_over_the_limit_says_which_limit(fakes: Fakes) -> None:
    server = start(fakes, max_receive_message_mb=1)
    try:
        with (
            Client(f"127.0.0.1:{server.port}") as client,
            pytest.raises(ResourceExhaustedError, match="raise the limit on both ends"),
        ):
            client.detect([np.zeros((1024, 1024, 3), np.uint8)])
    finally:
        server.stop()


def test_an_absent_server(tmp_path: Path) -> None:
    port = free_port()
    with Client(f"127.0.0.1:{port}") as client, pytest.raises(ServerUnavailableError) as caught:
        client.list_sources()
    assert str(caught.value).startswith(f"cannot reach the Heron server at 127.0.0.1:{port}: ")


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("localhost", "expected HOST:PORT"),
        ("127.0.0.1:", "expected HOST:PORT"),
        ("127.0.0.1:99999", "the port must be 1 to 65535"),
        ("http://127.0.0.1:50051", "expected HOST:PORT"),
    ],
)
def test_a_malformed_target_is_refused(target: str, expected: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(expected)) as caught:
        ClientSettings(target=target)
    assert caught.value.errors()[0]["loc"] == ("target",)


@pytest.mark.parametrize(
    ("field", "value"), [("deadline_s", 0), ("max_message_mb", -1), ("reconnect_timeout_s", -1)]
)
def test_malformed_settings_name_the_field(field: str, value: float) -> None:
    with pytest.raises(ValidationError) as caught:
        ClientSettings.model_validate({"target": "127.0.0.1:1", field: value})
    assert caught.value.errors()[0]["loc"] == (field,)


# -- token ---------------------------------------------------------------------------------


def test_the_token_is_accepted_or_refused(fakes: Fakes, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HERON_TOKEN", raising=False)
    with serving(fakes, token="s3cret") as server:
        target = f"127.0.0.1:{server.port}"
        fakes.detections.publish(1)
        with Client(ClientSettings(target=target, token="s3cret")) as client:
            assert client.list_sources() == []
            assert len(list(client.watch_status(interval_s=0.01))) == 3
            with client.subscribe(from_oldest=True) as subscription:
                assert next(subscription).HasField("frame")
        with Client(target) as client, pytest.raises(UnauthenticatedError) as missing:
            client.list_sources()
        guess = ClientSettings(target=target, token="guess")
        with Client(guess) as client, pytest.raises(UnauthenticatedError) as wrong:
            client.list_sources()
        monkeypatch.setenv("HERON_TOKEN", "s3cret")
        with Client(target) as client:
            assert client.list_sources() == []
    assert "no token was sent and it needs one" in str(missing.value)
    assert "the token is wrong" in str(wrong.value)
    assert "s3cret" not in str(wrong.value) + str(missing.value)


def test_the_token_is_never_shown() -> None:
    settings = ClientSettings(target="127.0.0.1:1", token="s3cret")
    assert "s3cret" not in repr(settings) + str(settings)


# -- TLS -----------------------------------------------------------------------------------


def test_tls_accepts_a_client_that_trusts_the_ca_and_refuses_others(
    fakes: Fakes, pki: Certs
) -> None:
    tls = TlsSettings(cert_file=pki.server.cert, key_file=pki.server.key)
    with serving(fakes, tls=tls) as server:
        target = f"127.0.0.1:{server.port}"
        trusted = ClientSettings(target=target, tls=ClientTls(ca_file=pki.ca))
        with Client(trusted) as client:
            assert client.get_model().name == MODEL.name
        rogue = ClientSettings(target=target, tls=ClientTls(ca_file=pki.rogue_ca))
        with Client(rogue) as client, pytest.raises(ServerUnavailableError) as untrusted:
            client.get_model()
        with Client(target) as client, pytest.raises(ServerUnavailableError) as plaintext:
            client.get_model()
    assert "check the TLS options" in str(untrusted.value)
    assert str(plaintext.value).startswith(f"cannot reach the Heron server at {target}")


def test_mutual_tls_needs_a_client_certificate_the_ca_signed(fakes: Fakes, pki: Certs) -> None:
    tls = TlsSettings(cert_file=pki.server.cert, key_file=pki.server.key, client_ca_file=pki.ca)
    with serving(fakes, tls=tls) as server:
        target = f"127.0.0.1:{server.port}"

        def settings(cert: Path | None, key: Path | None) -> ClientSettings:
            return ClientSettings(
                target=target, tls=ClientTls(ca_file=pki.ca, cert_file=cert, key_file=key)
            )

        with Client(settings(pki.client.cert, pki.client.key)) as client:
            assert client.get_model().name == MODEL.name
        for cert, key in ((None, None), (pki.rogue_client.cert, pki.rogue_client.key)):
            with Client(settings(cert, key)) as client, pytest.raises(ServerUnavailableError):
                client.get_model()


# -- Detector ------------------------------------------------------------------------------


def test_detect_sends_paths_bytes_and_arrays(client: Client, fakes: Fakes, tmp_path: Path) -> None:
    path = tmp_path / "one.png"
    path.write_bytes(PNG)
    colour = np.zeros((4, 6, 3), np.uint8)
    grey = np.zeros((5, 7), np.uint8)
    response = client.detect([path, PNG, colour, grey], min_confidence=0.5)
    assert [r.id for r in response.results] == [str(path), "1", "2", "3"]
    assert [(r.width, r.height) for r in response.results] == [(1, 1), (1, 1), (6, 4), (7, 5)]
    assert [o.label for o in response.results[0].objects] == ["Mask"]
    assert response.model_name == MODEL.name
    sent = fakes.detector.requests[0].images
    assert sent[0].encoded == PNG
    assert sent[2].raw.format == frame_pb2.PIXEL_FORMAT_BGR24
    assert len(sent[2].raw.data) == 4 * 6 * 3
    assert sent[3].raw.format == frame_pb2.PIXEL_FORMAT_GRAY8


def test_detect_rgb_arrays(client: Client, fakes: Fakes) -> None:
    client.detect([np.zeros((2, 2, 3), np.uint8)], order="rgb")
    assert fakes.detector.requests[0].images[0].raw.format == frame_pb2.PIXEL_FORMAT_RGB24


def test_detect_stream_answers_each_batch(client: Client) -> None:
    responses = list(client.detect_stream([[PNG], [PNG, PNG], [np.zeros((3, 3), np.uint8)]]))
    assert [len(r.results) for r in responses] == [1, 2, 1]


def test_detect_stream_raises_an_image_it_cannot_send(client: Client) -> None:
    # The requests are sent ahead of the answers: the stream may end before the first answer.
    responses = client.detect_stream([[PNG], [b"not an image"], [PNG]])
    with pytest.raises(ImageError, match=r"images\[0\]: expected a JPEG or PNG image"):
        list(responses)


def test_get_model(client: Client) -> None:
    assert client.get_model() == MODEL


@pytest.mark.parametrize(
    ("images", "expected"),
    [
        ([], "images: expected at least one image, got none"),
        (PNG, "images: expected a sequence of images, got one bytes"),
        ([b"GIF89a..."], "images[0]: expected a JPEG or PNG image, got 9 bytes starting 47 49"),
        ([np.zeros((2, 2), np.float32)], "images[0]: expected a uint8 array, got float32"),
        ([np.zeros((2, 2, 4), np.uint8)], "images[0]: expected an HxWx3 (colour) or HxW"),
        ([np.zeros((0, 2), np.uint8)], "images[0]: the image is empty"),
        ([3], "images[0]: expected a path, JPEG/PNG bytes or a uint8 numpy array, got int"),
        ([Path("/nowhere/x.png")], "/nowhere/x.png: cannot read it"),
    ],
)
def test_images_the_client_cannot_send(client: Client, images: object, expected: str) -> None:
    with pytest.raises(ImageError, match=re.escape(expected)):
        client.detect(images)  # type: ignore[arg-type]
