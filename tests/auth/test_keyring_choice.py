"""Which keyring holds the token cache: a real OS keyring, else keyrings.alt's file store chosen explicitly
(local mode, with a warning), never by autodetection; Azure mode refuses a file store without opt-in."""

from __future__ import annotations

from pathlib import Path

import pytest
from keyring.backend import KeyringBackend
from keyring.errors import KeyringLocked

from console.core.auth.chunked_store import ChunkedKeyringStore
from console.core.auth.errors import FileKeyringRefused, KeyringUnavailable
from console.core.auth.keyring_backend import choose_keyring, real_os_backends
from console.core.auth.manager import TokenStore
from console.core.settings import load_settings
from tests.auth.helpers import MemoryKeyring


class FakeOsKeyring(MemoryKeyring):
    """Stands in for Secret Service / Keychain / Credential Manager (its module is not keyrings.alt)."""


def test_real_os_backends_never_include_the_file_fail_null_or_chainer_backends() -> None:
    for backend in real_os_backends():
        module = type(backend).__module__
        assert not module.startswith("keyrings.alt")
        assert module not in ("keyring.backends.fail", "keyring.backends.null", "keyring.backends.chainer")


def test_local_mode_without_an_os_keyring_uses_the_explicit_file_store_with_a_warning(
    isolated_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("console.core.auth.keyring_backend.real_os_backends", lambda: [])
    choice = choose_keyring(mode="local")
    assert choice.is_file and type(choice.backend).__name__ == "PlaintextKeyring"
    assert (
        Path(choice.backend.file_path) == isolated_home / "keyring-fallback.cfg"
    )  # in the data dir, not ~/.local
    assert choice.warning and "plain file" in choice.warning and str(isolated_home) in choice.warning


def test_a_viable_os_keyring_wins_and_gets_no_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    real = FakeOsKeyring()
    monkeypatch.setattr("console.core.auth.keyring_backend.real_os_backends", lambda: [real])
    for mode in ("local", "azure"):
        choice = choose_keyring(mode=mode)
        assert choice.backend is real and not choice.is_file and choice.warning is None


def test_azure_mode_refuses_file_backends_unless_opted_in(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("console.core.auth.keyring_backend.real_os_backends", lambda: [])
    with pytest.raises(FileKeyringRefused, match="no OS keyring"):
        choose_keyring(mode="azure")
    with pytest.raises(FileKeyringRefused, match="PlaintextKeyring"):
        choose_keyring(mode="azure", requested="file")
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyrings.alt.file.PlaintextKeyring")
    with pytest.raises(FileKeyringRefused):
        choose_keyring(mode="azure")
    monkeypatch.delenv("PYTHON_KEYRING_BACKEND")
    # Opt-in through the environment variable the error message names.
    monkeypatch.setenv("OBO_CONSOLE_MODE", "azure")
    monkeypatch.setenv("OBO_CONSOLE_ALLOW_FILE_KEYRING", "true")
    settings = load_settings()
    choice = choose_keyring(mode=settings.mode, allow_file=settings.allow_file_keyring)
    assert choice.is_file and choice.warning


def test_a_missing_or_locked_keyring_is_a_clear_error() -> None:
    with pytest.raises(KeyringUnavailable) as info:
        choose_keyring(mode="local", requested="keyring.backends.SecretService.Keyring")
    assert "cannot be used" in str(info.value) and "OBO_CONSOLE_KEYRING_BACKEND" in str(info.value)

    class Locked(KeyringBackend):
        priority = 1  # type: ignore[assignment]

        def get_password(self, service: str, username: str) -> str | None:
            raise KeyringLocked("the collection is locked")

        def set_password(self, service: str, username: str, password: str) -> None:
            raise KeyringLocked("the collection is locked")

        def delete_password(self, service: str, username: str) -> None:
            raise KeyringLocked("the collection is locked")

    with pytest.raises(KeyringUnavailable, match="Unlock your OS keyring"):
        ChunkedKeyringStore(Locked(), "svc").read()
    with pytest.raises(KeyringUnavailable):
        TokenStore(backend=Locked()).accounts()


def test_chunk_size_is_configurable_and_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    backend = MemoryKeyring()
    monkeypatch.setenv("OBO_CONSOLE_KEYRING_CHUNK_SIZE", "300")
    store = TokenStore(backend=backend)
    assert store.store.chunk_size == 300
    store.store.write("x" * 5000 + "".join(chr(33 + i % 90) for i in range(3000)), "r1")
    assert max(len(v) for (s, u), v in backend.values.items() if u != "manifest") <= 300
    assert store.store.read()[0].endswith(chr(33 + 2999 % 90))
    with pytest.raises(ValueError, match="at least 256"):
        ChunkedKeyringStore(backend, "svc", chunk_size=10)
