"""Certificates made in the test: a CA, a server certificate for 127.0.0.1/localhost and a
client certificate it signed, and a second ("rogue") CA with a client certificate of its own
that a mutual-TLS server must refuse."""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass(frozen=True)
class Pki:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    rogue_ca: Path
    rogue_cert: Path
    rogue_key: Path


def make_pki(folder: Path) -> Pki:
    folder.mkdir(parents=True, exist_ok=True)
    ca = _authority("Heron test CA")
    rogue = _authority("Rogue CA")
    server = _leaf(ca, "localhost", ExtendedKeyUsageOID.SERVER_AUTH)
    client = _leaf(ca, "heron-cli", ExtendedKeyUsageOID.CLIENT_AUTH)
    rogue_client = _leaf(rogue, "intruder", ExtendedKeyUsageOID.CLIENT_AUTH)
    return Pki(
        ca=_write(folder / "ca.pem", _cert_pem(ca[1])),
        server_cert=_write(folder / "server.pem", _cert_pem(server[1])),
        server_key=_write(folder / "server.key", _key_pem(server[0])),
        client_cert=_write(folder / "client.pem", _cert_pem(client[1])),
        client_key=_write(folder / "client.key", _key_pem(client[0])),
        rogue_ca=_write(folder / "rogue-ca.pem", _cert_pem(rogue[1])),
        rogue_cert=_write(folder / "rogue.pem", _cert_pem(rogue_client[1])),
        rogue_key=_write(folder / "rogue.key", _key_pem(rogue_client[0])),
    )


Pair = tuple[ec.EllipticCurvePrivateKey, x509.Certificate]


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _builder(
    subject: str, issuer: x509.Name, key: ec.EllipticCurvePrivateKey
) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
    )


def _authority(common_name: str) -> Pair:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        _builder(common_name, _name(common_name), key)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _leaf(issuer: Pair, common_name: str, usage: x509.ObjectIdentifier) -> Pair:
    issuer_key, issuer_cert = issuer
    key = ec.generate_private_key(ec.SECP256R1())
    names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    cert = (
        _builder(common_name, issuer_cert.subject, key)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .sign(issuer_key, hashes.SHA256())
    )
    return key, cert


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path
