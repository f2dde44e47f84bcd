"""``OBO_CONSOLE_TOKEN_CACHE=memory`` (each web tab's console): real device-flow sign-ins against the local identity
platform with the token cache in the process's memory. The keyring (an in-memory test keyring, recording every
entry) is never written or read, no lock or pointer file is made, two such consoles do not see each other's
accounts, and the default (keyring) is unchanged beside them."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from console.core.auth.manager import KEYRING_SERVICE, AuthManager
from console.core.settings import load_settings
from mcp_server.errors import UserError
from tests.auth.conftest import AuthStack
from tests.auth.helpers import MemoryKeyring

ALICE, BOB, CAROL = "alice@contoso.example", "bob@contoso.example", "carol@contoso.example"


class WatchedKeyring(MemoryKeyring):
    """The test keyring, also counting reads: a memory cache must not even look at it."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    def get_password(self, service: str, username: str) -> str | None:
        self.reads += 1
        return super().get_password(service, username)


def _names(manager: AuthManager) -> list[str]:
    return [account.username for account in manager.accounts()]


def test_memory_caches_are_private_to_their_process_and_never_touch_the_keyring(
    auth_stack: AuthStack, make_manager: Callable[..., AuthManager]
) -> None:
    keyring = WatchedKeyring()
    tab1 = make_manager(settings=load_settings(token_cache="memory"), backend=keyring)
    assert tab1.tokens.choice is None and tab1.warning is None
    assert tab1.tokens.description == "memory (OBO_CONSOLE_TOKEN_CACHE=memory)"
    assert tab1.sign_in_as("alice").username == ALICE
    token = tab1.acquire_token()
    assert (token.account.username, token.source) == (ALICE, "cache")  # silent, from the tab's memory

    tab2 = make_manager(settings=load_settings(token_cache="memory"), backend=keyring)
    assert _names(tab2) == [] and tab2.current_account() is None  # a new tab starts signed out
    with pytest.raises(UserError) as refused:
        tab2.require_account()
    assert refused.value.message == "Not signed in."
    assert tab2.sign_in_as("bob").username == BOB
    assert _current(tab2) == BOB
    assert _names(tab1) == [ALICE] and _current(tab1) == ALICE  # tab 1 is still alice
    assert tab1.acquire_token().account.username == ALICE

    # Nothing of the tabs reached the keyring (not even a read), nor a pointer or lock file in the data dir.
    assert keyring.values == {} and keyring.reads == 0
    assert sorted(p.name for p in auth_stack.home.iterdir() if "account" in p.name or "lock" in p.name) == []

    # The terminal console (the default) keeps its accounts in the keyring, as before; a tab still sees none.
    terminal = make_manager(settings=load_settings(), backend=keyring)
    assert _names(terminal) == []  # alice and bob were the tabs' only
    terminal.sign_in_as("carol")
    assert {service for service, _ in keyring.values} == {KEYRING_SERVICE}
    assert (auth_stack.home / "current-account.json").exists()
    reads = keyring.reads
    tab3 = make_manager(settings=load_settings(token_cache="memory"), backend=keyring)
    assert _names(tab3) == [] and keyring.reads == reads

    tab1.sign_out(tab1.require_account())  # a tab's sign-out: its memory only
    assert _names(tab1) == [] and _names(tab2) == [BOB]
    assert _names(terminal) == [CAROL] and _current(terminal) == CAROL


def _current(manager: AuthManager) -> str | None:
    account = manager.current_account()
    return account.username if account else None


def test_a_token_cache_setting_that_is_neither_keyring_nor_memory_is_refused() -> None:
    with pytest.raises(UserError) as refused:
        load_settings(token_cache="disk")
    assert refused.value.message == (
        "Invalid settings:\n  OBO_CONSOLE_TOKEN_CACHE: Input should be 'keyring' or 'memory'"
    )
