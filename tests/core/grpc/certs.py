"""Certificates made for one test session: a CA, a server and a client it signed, and a rogue
CA with a client of its own (what a stranger would present)."""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

Key = ec.EllipticCurvePrivateKey


@dataclass(frozen=True)
class Pair:
    cert: Path
    key: Path


@dataclass(frozen=True)
class Certs:
    ca: Path
    server: Pair
    client: Pair
    rogue_ca: Path
    rogue_client: Pair


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _builder(
    subject: str, issuer: x509.Name, public: ec.EllipticCurvePublicKey
) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
    )


def _write(folder: Path, name: str, cert: x509.Certificate, key: Key) -> Pair:
    cert_path, key_path = folder / f"{name}.crt", folder / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return Pair(cert_path, key_path)


def _ca(folder: Path, name: str) -> tuple[x509.Certificate, Key, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        _builder(name, _name(name), key.public_key())
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, key_cert_sign=True, crl_sign=True,
                content_commitment=False, key_encipherment=False, data_encipherment=False,
                key_agreement=False, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    return cert, key, _write(folder, name, cert, key).cert


def _leaf(
    folder: Path,
    name: str,
    ca: x509.Certificate,
    ca_key: Key,
    *,
    server: bool,
    dns_names: Sequence[str] | None = None,
) -> Pair:
    key = ec.generate_private_key(ec.SECP256R1())
    builder = _builder(name, ca.subject, key.public_key())
    usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
    builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    if server:
        names: list[x509.GeneralName] = [
            x509.DNSName("localhost"),
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        ]
        if dns_names is not None:  # only these names: no loopback address
            names = [x509.DNSName(n) for n in dns_names]
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    return _write(folder, name, cert, key)


def make_certs(folder: Path, server_names: Sequence[str] | None = None) -> Certs:
    """`server_names`: the server certificate's only names (default localhost, 127.0.0.1)."""
    ca, ca_key, ca_path = _ca(folder, "heron-test-ca")
    rogue, rogue_key, rogue_path = _ca(folder, "rogue-ca")
    return Certs(
        ca=ca_path,
        server=_leaf(folder, "server", ca, ca_key, server=True, dns_names=server_names),
        client=_leaf(folder, "client", ca, ca_key, server=False),
        rogue_ca=rogue_path,
        rogue_client=_leaf(folder, "rogue-client", rogue, rogue_key, server=False),
    )
