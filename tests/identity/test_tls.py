"""The local CA: made once, reused, name-constrained to loopback; clients trust it explicitly and the machine's
CA-bundle variables break nothing."""

from __future__ import annotations

import ipaddress
import os
import stat
from pathlib import Path

import certifi
import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import verification

from mcp_server.localcloud.ca import CA_CERT, CA_KEY, SERVER_CERT, SERVER_KEY, ensure_tls, trusting_session
from mcp_server.localcloud.identity.platform import IdentityPlatform


def test_first_run_creates_private_keys_and_later_runs_reuse_them(tmp_path: Path) -> None:
    ca_path, tls = ensure_tls(tmp_path / "lc")
    for private in (tmp_path / "lc" / CA_KEY, tls.keyfile):
        assert stat.S_IMODE(private.stat().st_mode) == 0o600
    before = {
        name: (tmp_path / "lc" / name).read_bytes() for name in (CA_CERT, CA_KEY, SERVER_CERT, SERVER_KEY)
    }
    again_ca, again_tls = ensure_tls(tmp_path / "lc")
    assert (again_ca, again_tls) == (ca_path, tls)
    assert {name: (tmp_path / "lc" / name).read_bytes() for name in before} == before

    # A lost server key gets a new server certificate from the SAME CA (clients keep trusting it).
    tls.keyfile.unlink()
    ensure_tls(tmp_path / "lc")
    assert (tmp_path / "lc" / CA_CERT).read_bytes() == before[CA_CERT]
    assert (tmp_path / "lc" / SERVER_CERT).read_bytes() != before[SERVER_CERT]


def test_ca_is_name_constrained_and_server_cert_names_loopback(tmp_path: Path) -> None:
    ca_path, tls = ensure_tls(tmp_path)
    ca = x509.load_pem_x509_certificate(ca_path.read_bytes())
    constraints = ca.extensions.get_extension_for_class(x509.NameConstraints)
    assert constraints.critical
    assert set(constraints.value.permitted_subtrees or []) == {
        x509.DNSName("localhost"),
        x509.IPAddress(ipaddress.IPv4Network("127.0.0.1/32")),
    }
    server = x509.load_pem_x509_certificate(tls.certfile.read_bytes())
    san = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.IPv4Address("127.0.0.1")]
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]

    store = verification.Store([ca])
    verifier = (
        verification.PolicyBuilder()
        .store(store)
        .build_server_verifier(x509.IPAddress(ipaddress.IPv4Address("127.0.0.1")))
    )
    verifier.verify(server, [])  # a valid chain for 127.0.0.1

    # Even with the CA's key, a certificate for another host does not validate: the constraints forbid it.
    ca_key = serialization.load_pem_private_key((tmp_path / CA_KEY).read_bytes(), password=None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    rogue = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([]))
        .issuer_name(ca.subject)
        .public_key(leaf_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(server.not_valid_before_utc)
        .not_valid_after(server.not_valid_after_utc)
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("login.microsoftonline.com")]), critical=True
        )
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    rogue_verifier = (
        verification.PolicyBuilder()
        .store(store)
        .build_server_verifier(x509.DNSName("login.microsoftonline.com"))
    )
    with pytest.raises(verification.VerificationError):
        rogue_verifier.verify(rogue, [])


def test_ca_bundle_env_vars_set_to_the_system_bundle_break_nothing(
    identity_platform: IdentityPlatform, monkeypatch: pytest.MonkeyPatch
) -> None:
    bundle = certifi.where()
    for name in ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "CURL_CA_BUNDLE"):
        monkeypatch.setenv(name, os.environ.get(name) or bundle)
    url = identity_platform.openid_configuration_url

    with trusting_session(identity_platform.ca_cert_path) as session:  # the project's way
        assert session.get(url).status_code == 200
    assert requests.get(url, verify=str(identity_platform.ca_cert_path)).status_code == 200  # a plain call

    # The platform is really TLS with a private CA: the system bundle alone does not trust it ...
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(url)
    # ... and a Session's own `verify` loses to the env vars unless trust_env is off (why we turn it off).
    naive = requests.Session()
    naive.verify = str(identity_platform.ca_cert_path)
    with pytest.raises(requests.exceptions.SSLError):
        naive.get(url)
    naive.close()
