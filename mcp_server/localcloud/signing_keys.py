"""The token-signing key set of the local identity platform, persisted as JSON (0600) in the localcloud dir.

One current key signs; keys retired by ``rotate()`` stay published in the JWKS until their grace period ends,
so tokens they signed keep validating, then they disappear. The file is the only shared state: the
``obo-console rotate-keys`` command rewrites it (atomically), and a running platform notices the new file on its
next request (``reload_if_changed``), so rotation works against a running stack without an HTTP endpoint.
Key ids follow Entra: ``kid`` = ``x5t`` = base64url SHA-1 thumbprint of the key's self-signed certificate.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import fcntl
import hashlib
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from mcp_server.atomic import write_private

KEYS_FILE = "signing-keys.json"
DEFAULT_GRACE_SECONDS = 24 * 3600
FILE_VERSION = 1


class SigningKeyFileError(RuntimeError):
    """The key file is unreadable; the message says what to do."""


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _b64url_uint(value: int) -> str:
    return _b64url(value.to_bytes((value.bit_length() + 7) // 8, "big"))


@dataclass(frozen=True)
class SigningKey:
    """An RSA signing key with its certificate; ``drop_after`` is set once the key is retired."""

    kid: str
    private_key: rsa.RSAPrivateKey = field(repr=False)
    cert_der: bytes = field(repr=False)
    created_at: float = 0.0
    drop_after: float | None = None

    @property
    def x5t(self) -> str:
        return self.kid

    @classmethod
    def generate(cls, *, kid: str | None = None) -> SigningKey:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        now = dt.datetime.now(dt.UTC)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "OBO Console local token signing")])
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=3650))
            .sign(key, hashes.SHA256())
        )
        der = cert.public_bytes(serialization.Encoding.DER)
        return cls(
            kid=kid or _b64url(hashlib.sha1(der).digest()),
            private_key=key,
            cert_der=der,
            created_at=time.time(),
        )

    def sign(self, claims: dict[str, Any], *, x5t: bool = False) -> str:
        headers: dict[str, Any] = {"typ": "JWT", "kid": self.kid}
        if x5t:  # Entra puts x5t in v1 tokens' headers as well
            headers["x5t"] = self.kid
        return jwt.encode(claims, self.private_key, algorithm="RS256", headers=headers)

    def public_jwk(self, issuer: str | None = None) -> dict[str, Any]:
        numbers = self.private_key.public_key().public_numbers()
        jwk: dict[str, Any] = {
            "kty": "RSA",
            "use": "sig",
            "kid": self.kid,
            "x5t": self.kid,
            "n": _b64url_uint(numbers.n),
            "e": _b64url_uint(numbers.e),
            "x5c": [base64.b64encode(self.cert_der).decode()],
        }
        if issuer:
            jwk["issuer"] = issuer
        return jwk

    def active(self, now: float | None = None) -> bool:
        return self.drop_after is None or self.drop_after > (time.time() if now is None else now)

    def to_json(self) -> dict[str, Any]:
        pem = self.private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        return {
            "kid": self.kid,
            "private_key_pem": pem.decode(),
            "x5c": base64.b64encode(self.cert_der).decode(),
            "created_at": self.created_at,
            "drop_after": self.drop_after,
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> SigningKey:
        key = serialization.load_pem_private_key(raw["private_key_pem"].encode(), password=None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError(f"key {raw.get('kid')} is not an RSA key")
        return cls(
            kid=raw["kid"],
            private_key=key,
            cert_der=base64.b64decode(raw["x5c"]),
            created_at=float(raw.get("created_at", 0)),
            drop_after=raw.get("drop_after"),
        )


@dataclass
class KeySet:
    current: SigningKey
    retired: list[SigningKey]

    def published(self, now: float | None = None) -> list[SigningKey]:
        return [self.current, *(k for k in self.retired if k.active(now))]


class SigningKeyStore:
    """The key file at ``path``, cached in memory and reloaded whenever the file changes on disk."""

    def __init__(self, path: Path, *, clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self.clock = (
            clock  # epoch seconds: when a retired key leaves the JWKS (tests move it instead of sleeping)
        )
        self._lock = threading.Lock()
        self._keys: KeySet | None = None
        self._stamp: tuple[int, int, int] | None = None

    # -- reading -----------------------------------------------------------------------------------------
    def ensure(self) -> SigningKeyStore:
        """Create the key file with one key if it does not exist yet, then load it."""
        with _locked(self.path):
            if not self.path.exists():
                _write(self.path, KeySet(SigningKey.generate(), []))
        self.reload_if_changed()
        return self

    def reload_if_changed(self) -> KeySet:
        """The key set, re-read from disk if the file was replaced since the last read (one ``stat``)."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError as exc:
            if self._keys is not None:
                return self._keys  # keep signing with the last good keys
            raise SigningKeyFileError(f"No signing keys at {self.path}. Start the local stack once.") from exc
        stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
        with self._lock:
            if stamp != self._stamp or self._keys is None:
                try:
                    self._keys = _read(self.path)
                    self._stamp = stamp
                except SigningKeyFileError:
                    if self._keys is None:
                        raise
            return self._keys

    def current(self) -> SigningKey:
        return self.reload_if_changed().current

    def published(self) -> list[SigningKey]:
        return self.reload_if_changed().published(self.clock())

    def find(self, kid: str) -> SigningKey | None:
        return next((k for k in self.published() if k.kid == kid), None)

    def jwks(self, issuer: str | None = None) -> dict[str, Any]:
        return {"keys": [k.public_jwk(issuer) for k in self.published()]}

    # -- rotation ----------------------------------------------------------------------------------------
    def rotate(self, grace_seconds: float = DEFAULT_GRACE_SECONDS) -> SigningKey:
        new = rotate(self.path, grace_seconds)
        self.reload_if_changed()
        return new


def rotate(path: Path, grace_seconds: float = DEFAULT_GRACE_SECONDS) -> SigningKey:
    """Make a new current key; the old one stays published for ``grace_seconds``. Returns the new key."""
    if grace_seconds < 0:
        raise ValueError("grace period must be >= 0 seconds")
    with _locked(path):
        keys = _read(path)
        now = time.time()
        old = keys.current
        retired = [SigningKey(old.kid, old.private_key, old.cert_der, old.created_at, now + grace_seconds)]
        retired += [k for k in keys.retired if k.active(now)]  # dropped keys are gone for good
        new = SigningKey.generate()
        _write(path, KeySet(new, retired))
        return new


def _read(path: Path) -> KeySet:
    try:
        raw = json.loads(path.read_text())
        keys = [SigningKey.from_json(k) for k in raw["keys"]]
        current = next(k for k in keys if k.kid == raw["current"])
    except FileNotFoundError as exc:
        raise SigningKeyFileError(f"No signing keys at {path}. Start the local stack once.") from exc
    except (ValueError, KeyError, TypeError, StopIteration) as exc:
        raise SigningKeyFileError(
            f"The signing key file {path} is damaged ({exc!r}). Delete it and restart the local stack "
            "(every token issued so far becomes invalid; sign in again)."
        ) from exc
    return KeySet(current, [k for k in keys if k.kid != current.kid])


def _write(path: Path, keys: KeySet) -> None:
    data = {
        "version": FILE_VERSION,
        "current": keys.current.kid,
        "keys": [k.to_json() for k in [keys.current, *keys.retired]],
    }
    write_private(path, json.dumps(data, indent=2))


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with open(path.with_name(f".{path.name}.lock"), "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
