"""The token cache in a real OS keyring: gnome-keyring's Secret Service on a private D-Bus session bus, used by the
real CLI in fresh processes against the local identity platform. Sign-in, silent sign-in in another process, a
second account, sign-out (every chunk gone) and a locked keyring (a clear error, never a file instead)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from console.core.auth.chunked_store import MANIFEST_USER
from console.core.auth.keyring_backend import FILE_KEYRING_NAME
from console.core.auth.manager import KEYRING_SERVICE
from tests.auth.conftest import AuthStack, CliResult
from tests.auth.secret_service import SecretService, running_secret_service

SECRET_SERVICE_BACKEND = "keyring.backends.SecretService.Keyring"


@pytest.fixture
def secret_service(tmp_path: Path) -> Iterator[SecretService]:
    with running_secret_service(tmp_path / "secret-service") as service:
        yield service


@pytest.fixture
def cli(run_cli: Callable[..., CliResult], secret_service: SecretService) -> Callable[..., CliResult]:
    """The CLI with the Secret Service's session bus and HOME; the keyring chosen by OBO_CONSOLE_KEYRING_BACKEND."""

    def run(*args: str, backend: str = SECRET_SERVICE_BACKEND) -> CliResult:
        return run_cli(*args, env={**secret_service.env, "OBO_CONSOLE_KEYRING_BACKEND": backend})

    return run


def _stored(service: SecretService) -> tuple[dict[str, object], list[str]]:
    """The manifest and the chunk entries stored under the token cache's service name."""
    names = service.usernames(KEYRING_SERVICE)
    raw = service.lookup(KEYRING_SERVICE, MANIFEST_USER)
    assert raw is not None and MANIFEST_USER in names, names
    return json.loads(raw), [n for n in names if n != MANIFEST_USER]


def _assert_exactly_the_manifests_chunks(service: SecretService) -> int:
    manifest, chunks = _stored(service)
    bank, count = manifest["bank"], manifest["chunks"]
    assert (
        isinstance(count, int) and count >= 2
    )  # an MSAL cache is several KB: more than one 1,200-char chunk
    assert chunks == sorted(f"chunk.{bank}.{i}" for i in range(count))  # the other bank's chunks are gone
    return count


def test_sign_in_silent_sign_in_second_account_and_sign_out(
    cli: Callable[..., CliResult], secret_service: SecretService, auth_stack: AuthStack
) -> None:
    # auto picks the Secret Service: it is a real OS keyring, so no plain-file warning.
    login = cli("login", "--as", "alice", backend="auto")
    assert login.code == 0, login.stderr
    assert login.stdout.startswith("Signed in as Alice Example <alice@contoso.example>.")
    assert "plain file" not in login.stderr
    _assert_exactly_the_manifests_chunks(secret_service)

    # A fresh process signs in silently from the keyring: the token comes from the cache.
    whoami = cli("whoami", "--json", backend="auto")
    assert whoami.code == 0, whoami.stderr
    document = json.loads(whoami.stdout)
    assert document["account"]["username"] == "alice@contoso.example"
    assert document["token"]["source"] == "cache"
    assert document["keyring"] == SECRET_SERVICE_BACKEND
    assert document["token"]["claims"]["oid"] == auth_stack.oid("alice")

    # A second account: both in the one cache, rewritten to the other bank, the old bank's chunks removed.
    before, _ = _stored(secret_service)
    assert cli("login", "--as", "bob").code == 0
    after, _ = _stored(secret_service)
    assert after["bank"] != before["bank"]
    _assert_exactly_the_manifests_chunks(secret_service)
    both = json.loads(cli("whoami", "--json").stdout)
    assert both["account"]["username"] == "bob@contoso.example"
    assert both["accounts"] == ["alice@contoso.example", "bob@contoso.example"]

    # Sign out one account: the other stays signed in.
    assert cli("logout", "alice").code == 0
    remaining = json.loads(cli("whoami", "--json").stdout)
    assert remaining["accounts"] == ["bob@contoso.example"]
    _assert_exactly_the_manifests_chunks(secret_service)

    # Sign out everyone: every entry under the service is gone, and no file took their place.
    out = cli("logout", "--all")
    assert out.code == 0 and out.stdout.strip() == "Signed out 1 account; the token cache is empty."
    assert secret_service.usernames(KEYRING_SERVICE) == []
    assert not (auth_stack.home / FILE_KEYRING_NAME).exists()
    gone = cli("whoami")
    assert gone.code == 1 and gone.stderr.startswith("obo-console: error: Not signed in.")


@pytest.mark.parametrize("backend", ["auto", SECRET_SERVICE_BACKEND])
def test_a_locked_keyring_is_a_clear_error_and_never_a_file(
    cli: Callable[..., CliResult], secret_service: SecretService, auth_stack: AuthStack, backend: str
) -> None:
    assert cli("login", "--as", "alice", backend=backend).code == 0
    entries = secret_service.usernames(KEYRING_SERVICE)
    secret_service.lock()

    for argv in (["whoami"], ["login", "--as", "bob"]):
        result = cli(*argv, backend=backend)
        assert result.code == 1, result.stderr
        assert result.stderr.startswith(
            "obo-console: error: The keyring (Keyring) refused access: KeyringLocked: Failed to unlock the collection!"
        ), result.stderr
        assert "Unlock your OS keyring (or install one), then try again." in result.stderr
        assert result.stdout == ""
    assert not (auth_stack.home / FILE_KEYRING_NAME).exists()  # no silent fall back to a plain file
    assert secret_service.usernames(KEYRING_SERVICE) == entries  # nothing written while locked
