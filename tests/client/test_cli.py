"""`heron watch / status / detect / model / streams / models` against a real gRPC server serving
fakes: their output, exit codes (0 done, 1 the server failed or refused, 2 a usage error naming
the option), and one clear line when the server is absent."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from heron.cli.main import app
from heron.core.grpc import TlsSettings
from typer.testing import CliRunner, Result

from tests.client.client_fakes import MODEL, Fakes, position, serving
from tests.client.test_client import PNG
from tests.core.grpc.certs import make_certs
from tests.support.redis_server import free_port

ENV = {"COLUMNS": "300", "HERON_TOKEN": ""}


@pytest.fixture
def fakes() -> Fakes:
    return Fakes()


@pytest.fixture
def server(fakes: Fakes) -> Iterator[str]:
    with serving(fakes) as running:
        yield f"127.0.0.1:{running.port}"


def heron(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(app, list(args), env={**ENV, **(env or {})})


# -- watch ---------------------------------------------------------------------------------


def test_watch_prints_one_line_per_object(server: str, fakes: Fakes) -> None:
    fakes.detections.publish(2)
    result = heron("watch", "--server", server, "--after", position(0), "--limit", "2")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "2025-12-06T05:46:41.000Z stream=cam-1 frame=1 label=Mask confidence=0.91 "
        "box=10,20,30,41 track=7",
        "2025-12-06T05:46:41.000Z stream=cam-1 frame=1 label=No-Mask confidence=0.42 "
        "box=100,200,50,60 track=-",
        "2025-12-06T05:46:42.000Z stream=cam-1 frame=2 label=Mask confidence=0.91 "
        "box=10,20,30,41 track=7",
        "2025-12-06T05:46:42.000Z stream=cam-1 frame=2 label=No-Mask confidence=0.42 "
        "box=100,200,50,60 track=-",
    ]
    assert result.stderr.splitlines() == [
        f"stopped after position {position(2)}; resume with --after {position(2)}"
    ]


def test_watch_passes_its_filters(server: str, fakes: Fakes) -> None:
    fakes.detections.publish(1, stream="cam-2")
    fakes.detections.publish(1, stream="cam-1")
    result = heron(
        "watch",
        "--server",
        server,
        "--after",
        position(0),
        "--limit",
        "1",
        "--stream",
        "cam-1",
        "--stream",
        "cam-3",
        "--class",
        "Mask",
        "--min-confidence",
        "0.5",
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "2025-12-06T05:46:42.000Z stream=cam-1 frame=2 label=Mask confidence=0.91 "
        "box=10,20,30,41 track=7"
    ]
    request = fakes.detections.requests[0]
    assert list(request.stream_ids) == ["cam-1", "cam-3"]
    assert list(request.classes) == ["Mask"]
    assert request.min_confidence == pytest.approx(0.5)


def test_watch_prints_a_gap_as_a_warning(server: str, fakes: Fakes) -> None:
    fakes.detections.publish(5)
    fakes.detections.trim(oldest=4)
    result = heron("watch", "--server", server, "--after", position(1), "--limit", "1")
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines()[0] == (
        "warning: gap: 2 frames left the server's retention window before they could be sent "
        f"(after {position(1)}, resumed at {position(4)})"
    )
    assert "frame=4 " in result.stdout


def test_ctrl_c_ends_watch_cleanly_with_the_position(fakes: Fakes) -> None:
    fakes.detections.publish(3)
    with serving(fakes) as running:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "heron.cli.main",
                "watch",
                "--server",
                f"127.0.0.1:{running.port}",
                "--after",
                position(0),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **ENV},
        )
        try:
            assert process.stdout is not None
            lines = [process.stdout.readline() for _ in range(6)]  # 3 frames, 2 objects each
            process.send_signal(signal.SIGINT)
            _, stderr = process.communicate(timeout=30)
        finally:
            process.kill()
    assert process.returncode == 0, stderr
    assert all("stream=cam-1" in line for line in lines)
    assert stderr.strip().splitlines()[-1] == (
        f"stopped after position {position(3)}; resume with --after {position(3)}"
    )
    assert "Traceback" not in stderr


# -- status --------------------------------------------------------------------------------


def test_status(server: str) -> None:
    heron("streams", "add", "file:///clip.mp4", "--name", "cam-1", "--server", server)
    result = heron("status", "--server", server)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "pipeline face-mask at 2025-12-06T05:46:40.000Z",
        "services:",
        "  inference inference-0 serving model=facemask:3",
        "  tracker tracker-0 NOT SERVING (redis is down)",
        "sources:",
        "  cam-1 connecting fps=0.0 frames=0 dropped=0 reconnects=0 uri=file:///clip.mp4",
        "fps out: cam-1=30.0",
    ]


def test_status_watch_prints_each_status(server: str) -> None:
    result = heron("status", "--watch", "--interval", "0.1", "--server", server)
    assert result.exit_code == 0, result.output
    assert result.stdout.count("pipeline face-mask") == 3


# -- streams -------------------------------------------------------------------------------


def test_streams_add_ls_rm(server: str, fakes: Fakes) -> None:
    added = heron("streams", "add", "rtsp://cam/live", "--name", "door", "--server", server)
    assert added.exit_code == 0, added.output
    assert added.stdout.startswith("added door connecting ")
    assert heron("streams", "add", "file:///a.mp4", "--loop", "--server", server).exit_code == 0
    assert fakes.pipeline.sources["source-1"].source.loop
    listed = heron("streams", "ls", "--server", server)
    assert listed.exit_code == 0, listed.output
    assert [line.split()[0] for line in listed.stdout.splitlines()] == ["door", "source-1"]
    removed = heron("streams", "rm", "door", "--server", server)
    assert removed.exit_code == 0, removed.output
    assert removed.stdout == "removed door after 250 frames\n"


def test_server_refusals_exit_1_with_one_line(server: str) -> None:
    unknown = heron("streams", "rm", "cam-9", "--server", server)
    assert unknown.exit_code == 1
    assert unknown.stderr == "error: not found: no stream 'cam-9'\n"
    first = heron("streams", "add", "rtsp://x", "--name", "a", "--server", server)
    again = heron("streams", "add", "rtsp://x", "--name", "a", "--server", server)
    assert first.exit_code == 0
    assert again.exit_code == 1
    assert again.stderr.startswith("error: already exists: ")


def test_a_command_at_the_wrong_service_says_so(fakes: Fakes) -> None:
    from heron.core.grpc.server import start_server
    from heron.core.grpc.settings import GrpcServerSettings

    running = start_server(
        GrpcServerSettings(listen="127.0.0.1:0", grace_s=0), fakes.bindings()[2:]
    )
    try:
        result = heron("streams", "ls", "--server", f"127.0.0.1:{running.port}")
    finally:
        running.stop()
    assert result.exit_code == 1
    assert "does not serve heron.v1.Pipeline/ListSources: is it the right address" in (
        result.stderr
    )


# -- models ---------------------------------------------------------------------------------


def test_models_set_routes_streams_and_get_reads_the_routing(server: str, fakes: Fakes) -> None:
    before = heron("models", "get", "--server", server)
    assert before.exit_code == 0, before.output
    assert before.stdout.splitlines() == [
        "model facemask: config version 3",
        "default 3",
        "loaded 3",
    ]
    canary = heron(
        "models", "set", "--stream", "cam-1=4", "--stream", " cam-2 = 4", "--server", server
    )
    assert canary.exit_code == 0, canary.output
    assert canary.stdout.splitlines() == [
        "model facemask: config version 3",
        "default 3",
        "  cam-1=4",
        "  cam-2=4",
        "loaded 3, 4",
        "set by heron models set at 2025-12-06T05:46:40.000Z",
    ]
    (sent,) = fakes.pipeline.versions
    assert (sent.default_version, dict(sent.stream_versions)) == ("", {"cam-1": "4", "cam-2": "4"})
    promoted = heron("models", "set", "--default", "4", "--requested-by", "me", "--server", server)
    assert promoted.exit_code == 0, promoted.output
    got = heron("models", "get", "--json", "--server", server)
    assert json.loads(got.stdout)["default_version"] == "4"
    assert json.loads(got.stdout)["requested_by"] == "me"


def test_models_set_of_a_version_the_server_lacks_exits_1(server: str) -> None:
    result = heron("models", "set", "--default", "9", "--server", server)
    assert result.exit_code == 1
    assert result.stderr == "error: not found: version 9: no such version\n"


# -- detect, model -------------------------------------------------------------------------


def test_detect_json(server: str, tmp_path: Path) -> None:
    image = tmp_path / "face.png"
    image.write_bytes(PNG)
    result = heron("detect", str(image), "--json", "--server", server)
    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout)
    assert answer["model_name"] == "facemask"
    (only,) = answer["results"]
    assert (only["id"], only["width"], only["height"]) == (str(image), 1, 1)
    mask = only["objects"][0]
    assert mask["label"] == "Mask"
    assert mask["class_id"] == 0  # zeros are printed too
    assert mask["confidence"] == pytest.approx(0.91)
    assert mask["bbox"] == {
        "left": pytest.approx(10.4),
        "top": 20,
        "width": 30,
        "height": pytest.approx(40.6),
    }


def test_detect_text(server: str, tmp_path: Path) -> None:
    image = tmp_path / "face.png"
    image.write_bytes(PNG)
    result = heron("detect", str(image), str(image), "--min-confidence", "0.5", "--server", server)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "model facemask:3",
        f"{image}: 1 objects in 1x1",
        "  label=Mask confidence=0.91 box=10,20,30,41",
        f"{image}: 1 objects in 1x1",
        "  label=Mask confidence=0.91 box=10,20,30,41",
    ]


def test_model(server: str) -> None:
    result = heron("model", "--server", server)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "model facemask:3 (fp32, onnxruntime)",
        "input 3x544x960 (CxHxW), max batch 8",
        "labels Mask, No-Mask",
    ]
    as_json = json.loads(heron("model", "--json", "--server", server).stdout)
    assert as_json["labels"] == list(MODEL.labels)


# -- the server absent, the token, TLS -----------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [
        ["watch"],
        ["status"],
        ["model"],
        ["streams", "ls"],
        ["streams", "add", "rtsp://x"],
        ["streams", "rm", "cam-1"],
        ["models", "get"],
        ["models", "set", "--default", "2"],
        ["detect", "IMAGE"],
    ],
    ids=" ".join,
)
def test_an_absent_server_is_one_line_and_exit_1(command: list[str], tmp_path: Path) -> None:
    image = tmp_path / "face.png"
    image.write_bytes(PNG)
    args = [str(image) if a == "IMAGE" else a for a in command]
    port = free_port()
    started = time.monotonic()
    result = heron(*args, "--server", f"127.0.0.1:{port}")
    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: cannot reach the Heron server at 127.0.0.1:{port}: ")
    assert len(result.stderr.splitlines()) == 1
    assert time.monotonic() - started < 5


def test_the_token_from_the_option_or_the_environment(fakes: Fakes) -> None:
    with serving(fakes, token="s3cret") as running:
        server = f"127.0.0.1:{running.port}"
        missing = heron("streams", "ls", "--server", server)
        wrong = heron("streams", "ls", "--server", server, "--token", "guess")
        right = heron("streams", "ls", "--server", server, "--token", "s3cret")
        from_env = heron("streams", "ls", "--server", server, env={"HERON_TOKEN": "s3cret"})
    assert (missing.exit_code, wrong.exit_code, right.exit_code, from_env.exit_code) == (1, 1, 0, 0)
    assert "no token was sent and it needs one" in missing.stderr
    assert "the token is wrong" in wrong.stderr


def test_tls_and_mutual_tls_options(fakes: Fakes, tmp_path: Path) -> None:
    pki = make_certs(tmp_path)
    tls = TlsSettings(cert_file=pki.server.cert, key_file=pki.server.key, client_ca_file=pki.ca)
    with serving(fakes, tls=tls) as running:
        server = f"127.0.0.1:{running.port}"
        ok = heron(
            "model",
            "--server",
            server,
            "--tls-ca",
            str(pki.ca),
            "--tls-cert",
            str(pki.client.cert),
            "--tls-key",
            str(pki.client.key),
        )
        no_cert = heron("model", "--server", server, "--tls-ca", str(pki.ca))
    assert ok.exit_code == 0, ok.output
    assert no_cert.exit_code == 1
    assert no_cert.stderr.startswith(f"error: cannot reach the Heron server at {server}")


def test_a_refused_handshake_is_one_line_on_stderr(fakes: Fakes, tmp_path: Path) -> None:
    """In a process of its own: gRPC's C core logs a failed handshake to stderr itself."""
    pki = make_certs(tmp_path)
    tls = TlsSettings(cert_file=pki.server.cert, key_file=pki.server.key)
    env = {k: v for k, v in os.environ.items() if k != "GRPC_VERBOSITY"}
    with serving(fakes, tls=tls) as running:
        server = f"127.0.0.1:{running.port}"
        result = subprocess.run(
            [sys.executable, "-m", "heron.cli.main", "model", "--server", server,
             "--tls-ca", str(pki.rogue_ca)],
            check=False, capture_output=True, text=True, env={**env, **ENV}, timeout=60,
        )  # fmt: skip
    assert result.returncode == 1
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"error: cannot reach the Heron server at {server}: ")
    assert line.endswith("when the server requires mutual TLS)")


# -- usage errors --------------------------------------------------------------------------

COMMANDS = [
    ["watch"],
    ["status"],
    ["model"],
    ["streams", "ls"],
    ["streams", "add", "rtsp://x"],
    ["streams", "rm", "cam-1"],
    ["models", "get"],
    ["models", "set", "--stream", "cam-1=2"],
    ["detect", "IMAGE"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["--server", "localhost"], "--server"),
        (["--server", "127.0.0.1:99999"], "--server"),
        (["--server", ""], "--server"),
        (["--tls-ca", "/nowhere/ca.pem"], "--tls-ca"),
        (["--tls-cert", "CERT"], "--tls-cert"),
    ],
    ids=["no port", "port out of range", "empty", "missing CA file", "cert without key"],
)
def test_malformed_options_exit_2_naming_the_option(
    command: list[str], args: list[str], option: str, tmp_path: Path
) -> None:
    image = tmp_path / "face.png"
    image.write_bytes(PNG)
    replace = {"IMAGE": str(image), "CERT": str(image)}
    result = heron(*[replace.get(a, a) for a in [*command, *args]])
    assert result.exit_code == 2, result.output
    assert option in result.output


@pytest.mark.parametrize(
    "args",
    [
        ["watch", "--min-confidence", "1.5"],
        ["watch", "--min-confidence", "-0.1"],
        ["watch", "--min-confidence", "high"],
        ["detect", "IMAGE", "--min-confidence", "2"],
    ],
)
def test_a_bad_min_confidence_exits_2(args: list[str], tmp_path: Path) -> None:
    image = tmp_path / "face.png"
    image.write_bytes(PNG)
    result = heron(*[str(image) if a == "IMAGE" else a for a in args])
    assert result.exit_code == 2, result.output
    assert "--min-confidence" in result.output


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["watch", "--limit", "0"], "--limit"),
        (["status", "--watch", "--interval", "0"], "--interval"),
        (["streams", "add", " "], "URI"),
        (["streams", "add", "rtsp://x", "--name", ""], "--name"),
        (["streams", "rm", ""], "ID"),
        (["detect"], "IMAGE"),
        (["detect", "/nowhere/face.png"], "IMAGE"),
        (["detect", "NOT_AN_IMAGE"], "IMAGE"),
        (["models", "set", "--stream", "cam-1"], "expected ID=VERSION"),
        (["models", "set", "--stream", "cam-1:2"], "--stream"),
        (["models", "set", "--stream", "=2"], "got '=2'"),
        (["models", "set", "--stream", "cam-1="], "got 'cam-1='"),
        (["models", "set", "--stream", "a=1", "--stream", "a=2"], "stream 'a' is given twice"),
        (["models", "set", "--timeout", "0"], "--timeout"),
    ],
)
def test_other_malformed_input_exits_2(args: list[str], named: str, tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("not a picture")
    result = heron(*[str(text) if a == "NOT_AN_IMAGE" else a for a in args])
    assert result.exit_code == 2, result.output
    assert named in result.output


def test_help_lists_the_commands_and_loads_no_grpc() -> None:
    code = "import sys; from heron.cli.main import app; print('grpc' in sys.modules)"
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert loaded == "False"
    result = heron("--help")
    for command in ("watch", "status", "detect", "model", "streams", "models"):
        assert command in result.stdout
    assert "[default:" not in heron("watch", "--help").stdout
