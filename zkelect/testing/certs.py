"""A throwaway certificate authority for local TLS ensembles (tests, benchmarks, trials).

``make_test_pki(directory)`` writes PEM files: a CA, a server certificate for the names
you give (by default ``localhost`` and ``127.0.0.1``) and a client certificate, all signed
by that CA. It needs the ``cryptography`` package (in the ``test`` extra); it is imported
only when called. Keys are unencrypted EC P-256: fine for loopback tests, never for
production (production certificates come from your own CA and its key handling).
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zkelect.errors import ConfigurationError

__all__ = ["TestPki", "make_certificate", "make_test_pki"]


@dataclass(frozen=True)
class TestPki:
    """Paths of the PEM files ``make_test_pki`` wrote."""

    __test__ = False  # not a pytest test class, despite the name

    ca_file: Path
    ca_key_file: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def _crypto() -> Any:
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
    except ImportError:  # pragma: no cover - depends on the environment
        raise ConfigurationError(
            "generating test certificates needs the 'cryptography' package: "
            "pip install 'zkelect[test]' (or pip install cryptography)"
        ) from None
    return x509, hashes, serialization, ec, ExtendedKeyUsageOID, NameOID


def _write_key(path: Path, key: Any) -> None:
    _, _, serialization, _, _, _ = _crypto()
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)


def _write_cert(path: Path, cert: Any) -> None:
    _, _, serialization, _, _, _ = _crypto()
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _new_ca(common_name: str) -> tuple[Any, Any]:
    x509, hashes, _, ec, _, NameOID = _crypto()
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=7))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
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
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def make_certificate(
    ca_cert_file: Path,
    ca_key_file: Path,
    cert_file: Path,
    key_file: Path,
    *,
    names: tuple[str, ...],
    client: bool = False,
) -> None:
    """A leaf certificate for ``names`` (DNS names or IP addresses) signed by the CA."""
    x509, hashes, serialization, ec, ExtendedKeyUsageOID, NameOID = _crypto()
    ca_cert = x509.load_pem_x509_certificate(ca_cert_file.read_bytes())
    ca_key = serialization.load_pem_private_key(ca_key_file.read_bytes(), password=None)
    key = ec.generate_private_key(ec.SECP256R1())
    sans: list[Any] = []
    for name in names:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            sans.append(x509.DNSName(name))
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=7))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.CLIENT_AUTH if client else ExtendedKeyUsageOID.SERVER_AUTH]
                # ZooKeeper's trust manager checks server certs of peers as clients too.
                + ([] if client else [ExtendedKeyUsageOID.CLIENT_AUTH])
            ),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    _write_key(key_file, key)
    _write_cert(cert_file, builder.sign(ca_key, hashes.SHA256()))


def make_test_pki(
    directory: str | Path,
    *,
    server_names: tuple[str, ...] = ("localhost", "127.0.0.1"),
    client_names: tuple[str, ...] = ("zkelect-client", "127.0.0.1"),
    ca_name: str = "zkelect test CA",
) -> TestPki:
    """Write a CA, a server and a client certificate (PEM) under ``directory``."""
    if not server_names or not client_names:
        raise ConfigurationError("server_names and client_names must not be empty")
    base = Path(directory)
    base.mkdir(parents=True, exist_ok=True)
    ca_key, ca_cert = _new_ca(ca_name)
    pki = TestPki(
        ca_file=base / "ca.pem",
        ca_key_file=base / "ca-key.pem",
        server_cert=base / "server.pem",
        server_key=base / "server-key.pem",
        client_cert=base / "client.pem",
        client_key=base / "client-key.pem",
    )
    _write_key(pki.ca_key_file, ca_key)
    _write_cert(pki.ca_file, ca_cert)
    make_certificate(
        pki.ca_file, pki.ca_key_file, pki.server_cert, pki.server_key, names=server_names
    )
    make_certificate(
        pki.ca_file,
        pki.ca_key_file,
        pki.client_cert,
        pki.client_key,
        names=client_names,
        client=True,
    )
    return pki
