"""TLS and mutual TLS from certificate files: the right client is served, a client that does
not trust the server or presents no (or a stranger's) certificate is refused."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest
from heron.core.grpc import ClientTls, open_channel
from heron.v1.detector_pb2 import GetModelRequest
from heron.v1.detector_pb2_grpc import DetectorStub

from tests.core.grpc.certs import Certs
from tests.core.grpc.conftest import FakeDetector, serving, settings


def tls_settings(certs: Certs, mutual: bool, **fields: object) -> dict[str, object]:
    tls: dict[str, object] = {"cert_file": certs.server.cert, "key_file": certs.server.key}
    if mutual:
        tls["client_ca_file"] = certs.ca
    return {"tls": tls, **fields}


def model_name(
    port: int, tls: ClientTls | None, host: str = "localhost", token: str | None = None
) -> str:
    with open_channel(f"{host}:{port}", tls=tls, token=token) as channel:
        return str(DetectorStub(channel).GetModel(GetModelRequest(), timeout=5).name)


def refused(port: int, tls: ClientTls | None) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as e:
        model_name(port, tls)
    return e.value.code()


def test_tls_serves_a_client_that_trusts_the_ca(certs: Certs, detector: FakeDetector) -> None:
    with serving(settings(**tls_settings(certs, mutual=False)), detector) as running:
        assert model_name(running.port, ClientTls(ca_file=certs.ca)) == "fake"
        assert model_name(running.port, ClientTls(ca_file=certs.ca), host="127.0.0.1") == "fake"
        # A client trusting only the system's CAs, or another CA, does not accept the server.
        assert refused(running.port, ClientTls()) == grpc.StatusCode.UNAVAILABLE
        assert (
            refused(running.port, ClientTls(ca_file=certs.rogue_ca)) == grpc.StatusCode.UNAVAILABLE
        )
        # Nor does a plaintext client get anything from a TLS port.
        assert refused(running.port, None) == grpc.StatusCode.UNAVAILABLE


def test_tls_and_token_together(certs: Certs, detector: FakeDetector) -> None:
    fields = tls_settings(certs, mutual=False, token="tls-token")
    with serving(settings(**fields), detector) as running:
        tls = ClientTls(ca_file=certs.ca)
        assert model_name(running.port, tls, token="tls-token") == "fake"
        with pytest.raises(grpc.RpcError) as e:
            model_name(running.port, tls, token="other")
        assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_mutual_tls_needs_a_client_certificate_the_ca_signed(
    certs: Certs, detector: FakeDetector
) -> None:
    with serving(settings(**tls_settings(certs, mutual=True)), detector) as running:
        ours = ClientTls(ca_file=certs.ca, cert_file=certs.client.cert, key_file=certs.client.key)
        assert model_name(running.port, ours) == "fake"
        stranger = ClientTls(
            ca_file=certs.ca, cert_file=certs.rogue_client.cert, key_file=certs.rogue_client.key
        )
        assert refused(running.port, stranger) == grpc.StatusCode.UNAVAILABLE
        assert refused(running.port, ClientTls(ca_file=certs.ca)) == grpc.StatusCode.UNAVAILABLE


def test_a_missing_certificate_file_names_the_setting(
    certs: Certs, detector: FakeDetector, tmp_path: Path
) -> None:
    fields: dict[str, object] = {
        "tls": {"cert_file": tmp_path / "absent.crt", "key_file": certs.server.key}
    }
    missing = pytest.raises(FileNotFoundError, match=r"tls\.cert_file: cannot read .*absent\.crt")
    with missing, serving(settings(**fields), detector):
        pass
    not_pem = tmp_path / "ca.txt"
    not_pem.write_text("hello")
    fields = tls_settings(certs, mutual=True)
    fields["tls"] = {
        "cert_file": certs.server.cert,
        "key_file": certs.server.key,
        "client_ca_file": not_pem,
    }
    not_pem_error = pytest.raises(ValueError, match=r"tls\.client_ca_file: .* is not PEM")
    with not_pem_error, serving(settings(**fields), detector):
        pass


def test_client_tls_needs_cert_and_key_together(certs: Certs) -> None:
    with pytest.raises(ValueError, match="cert_file and key_file go together"):
        ClientTls(cert_file=certs.client.cert)


def test_server_name_checks_a_name_other_than_the_targets_host(
    certs: Certs, detector: FakeDetector
) -> None:
    """Dialling an address the certificate does not name (a Service's cluster IP), the client
    checks the name it should carry instead; a name it does not carry is refused."""
    with serving(settings(**tls_settings(certs, mutual=False)), detector) as running:
        named = ClientTls(ca_file=certs.ca, server_name="localhost")
        assert model_name(running.port, named, host="127.0.0.1") == "fake"
        other = ClientTls(ca_file=certs.ca, server_name="pipeline.video.svc")
        assert refused_at(running.port, other, "127.0.0.1") == grpc.StatusCode.UNAVAILABLE


def refused_at(port: int, tls: ClientTls, host: str) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as e:
        model_name(port, tls, host=host)
    return e.value.code()
