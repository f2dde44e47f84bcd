"""The local CA and the loopback server certificate, made on first run and reused afterwards.

The CA is name-constrained to ``127.0.0.1`` and ``localhost``: even if someone trusts it system-wide, it cannot
vouch for any other host. Private keys are written 0600 (``write_private``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import ipaddress
import socket
import ssl
from collections.abc import Iterator
from pathlib import Path

import requests
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from mcp_server.atomic import write_private
from mcp_server.localcloud.serve import TLSFiles

CA_CERT = "ca.pem"
CA_KEY = "ca-key.pem"
SERVER_CERT = "server.pem"
SERVER_KEY = "server-key.pem"
LOOPBACK_IP = ipaddress.IPv4Address("127.0.0.1")
CA_DAYS = 3650
SERVER_DAYS = 397
RENEW_BEFORE = dt.timedelta(days=30)


def ensure_tls(directory: Path) -> tuple[Path, TLSFiles]:
    """Return ``(ca_cert_path, TLSFiles)`` in ``directory``, creating or renewing what is missing or stale."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    with _locked(directory / ".tls.lock"):
        ca_cert, ca_key = _load_ca(directory) or _create_ca(directory)
        if not _server_cert_ok(directory, ca_cert):
            _create_server_cert(directory, ca_cert, ca_key)
    return directory / CA_CERT, TLSFiles(certfile=directory / SERVER_CERT, keyfile=directory / SERVER_KEY)


def trusting_session(ca_cert: Path | str) -> requests.Session:
    """A requests Session that trusts exactly ``ca_cert`` and ignores the machine's CA-bundle variables."""
    session = requests.Session()
    session.verify = str(ca_cert)
    session.trust_env = False  # REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE would otherwise override verify
    return session


def ssl_context(ca_cert: Path | str) -> ssl.SSLContext:
    """An SSL context trusting exactly ``ca_cert`` (for httpx2 and other non-requests clients)."""
    return ssl.create_default_context(cafile=str(ca_cert))


@contextlib.contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    # Two processes starting at once (a stack and a test, say) must not write different CAs.
    with open(lock_path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _load_ca(directory: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None:
    try:
        cert = x509.load_pem_x509_certificate((directory / CA_CERT).read_bytes())
        key = serialization.load_pem_private_key((directory / CA_KEY).read_bytes(), password=None)
    except (FileNotFoundError, ValueError):
        return None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or cert.not_valid_after_utc - RENEW_BEFORE < _now():
        return None
    if cert.public_key() != key.public_key():
        return None
    return cert, key


def _create_ca(directory: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "OBO Console local cloud"),
            x509.NameAttribute(NameOID.COMMON_NAME, f"OBO Console local CA ({socket.gethostname()[:40]})"),
        ]
    )
    now = _now()
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
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
        .add_extension(
            x509.NameConstraints(
                permitted_subtrees=[
                    x509.DNSName("localhost"),
                    x509.IPAddress(ipaddress.IPv4Network("127.0.0.1/32")),
                ],
                excluded_subtrees=None,
            ),
            critical=True,
        )
        .add_extension(ski, critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
        .sign(key, hashes.SHA256())
    )
    write_private(
        directory / CA_KEY,
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ),
    )
    write_private(directory / CA_CERT, cert.public_bytes(serialization.Encoding.PEM))
    (directory / CA_CERT).chmod(0o644)  # a public certificate: clients read it
    return cert, key


def _server_cert_ok(directory: Path, ca_cert: x509.Certificate) -> bool:
    try:
        cert = x509.load_pem_x509_certificate((directory / SERVER_CERT).read_bytes())
        key = serialization.load_pem_private_key((directory / SERVER_KEY).read_bytes(), password=None)
    except (FileNotFoundError, ValueError):
        return False
    if cert.public_key() != key.public_key():
        return False
    if cert.issuer != ca_cert.subject or cert.not_valid_after_utc - RENEW_BEFORE < _now():
        return False
    try:
        cert.verify_directly_issued_by(ca_cert)
    except (InvalidSignature, ValueError, TypeError):  # signed by another CA: reissue
        return False
    return True


def _create_server_cert(
    directory: Path, ca_cert: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey
) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=SERVER_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(LOOPBACK_IP)]),
            critical=False,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    write_private(
        directory / SERVER_KEY,
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ),
    )
    write_private(directory / SERVER_CERT, cert.public_bytes(serialization.Encoding.PEM))
    (directory / SERVER_CERT).chmod(0o644)
