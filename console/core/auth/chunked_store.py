"""One text value kept in a keyring as several small entries plus a manifest.

Windows Credential Manager holds about 2.5 KB per entry (and keyring stores the text as UTF-16 there), while an
MSAL token cache with a few accounts is several KB. So the text is compressed, base64-encoded (ASCII: one byte
per character in UTF-8) and split into chunks of at most ``chunk_size`` characters.

Crash safety: chunks are written to one of two banks ("a"/"b"), the one the manifest does not point at; the
manifest is switched last, then the old bank is deleted. The manifest records how many chunks the other bank may
still hold, so a writer interrupted before that deletion leaves nothing behind that the next writer won't remove.
Callers serialise access with ``CacheLock``; this class does no locking itself.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, replace

from keyring.backend import KeyringBackend
from keyring.errors import KeyringError, PasswordDeleteError

from console.core.auth.errors import KeyringUnavailable, TokenCacheCorrupt

MANIFEST_USER = "manifest"
FORMAT = "obo-console-chunked/1"
# Below the 2,560-byte Windows Credential Manager limit even when stored as UTF-16 (2 bytes per character).
DEFAULT_CHUNK_SIZE = 1200
MIN_CHUNK_SIZE = 256


@dataclass(frozen=True)
class Manifest:
    bank: str
    chunks: int
    sha256: str
    revision: str
    other_bank_chunks: int

    def to_json(self) -> str:
        return json.dumps(
            {
                "format": FORMAT,
                "bank": self.bank,
                "chunks": self.chunks,
                "sha256": self.sha256,
                "revision": self.revision,
                "other_bank_chunks": self.other_bank_chunks,
            },
            separators=(",", ":"),
        )

    @classmethod
    def parse(cls, raw: str) -> Manifest:
        data = json.loads(raw)
        if data.get("format") != FORMAT or data.get("bank") not in ("a", "b"):
            raise ValueError(f"unknown manifest format {data.get('format')!r}")
        return cls(
            bank=data["bank"],
            chunks=int(data["chunks"]),
            sha256=str(data["sha256"]),
            revision=str(data["revision"]),
            other_bank_chunks=int(data.get("other_bank_chunks", 0)),
        )


def _other(bank: str) -> str:
    return "b" if bank == "a" else "a"


def _chunk_user(bank: str, index: int) -> str:
    return f"chunk.{bank}.{index}"


class ChunkedKeyringStore:
    """``read()``/``write(text)``/``clear()`` of one value under ``service`` in ``backend``."""

    def __init__(self, backend: KeyringBackend, service: str, chunk_size: int = DEFAULT_CHUNK_SIZE) -> None:
        if chunk_size < MIN_CHUNK_SIZE:
            raise ValueError(
                f"keyring chunk size must be at least {MIN_CHUNK_SIZE} characters, got {chunk_size}"
            )
        self.backend = backend
        self.service = service
        self.chunk_size = chunk_size

    # -- reading -----------------------------------------------------------------------------------
    def manifest(self) -> Manifest | None:
        raw = self._get(self.service, MANIFEST_USER)
        if raw is None:
            return None
        try:
            return Manifest.parse(raw)
        except (ValueError, KeyError, TypeError) as exc:
            raise self._corrupt(f"its manifest is unreadable ({exc})") from exc

    def revision(self) -> str | None:
        """A cheap change detector: one keyring read."""
        manifest = self.manifest()
        return manifest.revision if manifest else None

    def read(self) -> tuple[str | None, str | None]:
        """(text, revision), or (None, None) when nothing is stored."""
        manifest = self.manifest()
        if manifest is None:
            return None, None
        if manifest.chunks == 0:  # a first write was interrupted: nothing stored yet
            return None, manifest.revision or None
        parts: list[str] = []
        for index in range(manifest.chunks):
            part = self._get(self.service, _chunk_user(manifest.bank, index))
            if part is None:
                raise self._corrupt(f"chunk {index + 1} of {manifest.chunks} is missing")
            parts.append(part)
        payload = "".join(parts)
        if hashlib.sha256(payload.encode("ascii", "replace")).hexdigest() != manifest.sha256:
            raise self._corrupt("its chunks do not match the manifest's checksum")
        try:
            text = zlib.decompress(base64.b64decode(payload, validate=True)).decode("utf-8")
        except (ValueError, zlib.error) as exc:
            raise self._corrupt(f"it cannot be decoded ({exc})") from exc
        return text, manifest.revision

    # -- writing -----------------------------------------------------------------------------------
    def write(self, text: str, revision: str) -> int:
        """Store ``text``; returns the number of chunks written."""
        payload = base64.b64encode(zlib.compress(text.encode("utf-8"), 6)).decode("ascii")
        chunks = [payload[i : i + self.chunk_size] for i in range(0, len(payload), self.chunk_size)] or [""]
        try:
            stored = self.manifest()
        except TokenCacheCorrupt:
            stored = None  # overwritten below; a corrupt manifest must not block a fresh write
        old = stored or Manifest(bank="b", chunks=0, sha256="", revision="", other_bank_chunks=0)
        bank = _other(old.bank)
        if stored is None or len(chunks) > old.other_bank_chunks:
            # Record the intent first, so chunks of a writer interrupted below are known and removed later.
            old = replace(old, other_bank_chunks=len(chunks))
            self._set(self.service, MANIFEST_USER, old.to_json())
        for index, part in enumerate(chunks):
            self._set(self.service, _chunk_user(bank, index), part)
        # What the target bank may still hold beyond our chunk count (from an interrupted writer) goes too.
        for index in range(len(chunks), old.other_bank_chunks):
            self._delete(_chunk_user(bank, index))
        manifest = Manifest(
            bank=bank,
            chunks=len(chunks),
            sha256=hashlib.sha256(payload.encode("ascii")).hexdigest(),
            revision=revision,
            other_bank_chunks=old.chunks,
        )
        self._set(self.service, MANIFEST_USER, manifest.to_json())
        for index in range(old.chunks):
            self._delete(_chunk_user(old.bank, index))
        return len(chunks)

    def clear(self) -> None:
        """Remove the value and every chunk the manifest knows of (both banks)."""
        try:
            old = self.manifest()
        except TokenCacheCorrupt:
            old = None
        if old:
            for index in range(old.chunks):
                self._delete(_chunk_user(old.bank, index))
            for index in range(old.other_bank_chunks):
                self._delete(_chunk_user(_other(old.bank), index))
        self._delete(MANIFEST_USER)

    def _get(self, service: str, user: str) -> str | None:
        with self._keyring_errors():
            return self.backend.get_password(service, user)

    def _set(self, service: str, user: str, value: str) -> None:
        with self._keyring_errors():
            self.backend.set_password(service, user, value)

    def _delete(self, user: str) -> None:
        with self._keyring_errors(), contextlib.suppress(PasswordDeleteError):  # already gone
            self.backend.delete_password(self.service, user)

    @contextlib.contextmanager
    def _keyring_errors(self) -> Iterator[None]:
        try:
            yield
        except PasswordDeleteError:
            raise
        except KeyringError as exc:
            raise KeyringUnavailable(
                f"The keyring ({type(self.backend).__name__}) refused access: {type(exc).__name__}: {exc}",
                hint="Unlock your OS keyring (or install one), then try again.",
            ) from exc

    def _corrupt(self, why: str) -> TokenCacheCorrupt:
        return TokenCacheCorrupt(
            f"The token cache in the keyring ({self.service}) cannot be read: {why}.",
            hint="Sign out everywhere with `obo-console logout --all` (it resets the cache), then sign in again.",
        )
