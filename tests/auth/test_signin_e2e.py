"""Sign-in end to end: real MSAL over real HTTPS against the local identity platform, the real CLI in fresh
processes, and the token cache in the keyring (the file store in the test's own home)."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import threading

import pytest
from pydantic import SecretStr

from console.core.auth.chunked_store import MANIFEST_USER
from console.core.auth.errors import DeviceFlowCancelled, DeviceFlowError, FileKeyringRefused, SignInError
from console.core.auth.keyring_backend import file_keyring
from console.core.auth.manager import KEYRING_SERVICE, AuthManager
from console.core.endpoints import Endpoints, resolve_endpoints
from console.core.errors import NotSignedIn, StackNotRunning
from console.core.settings import Settings
from mcp_server.errors import UserError
from mcp_server.localcloud.identity.device_page import complete_device_code
from mcp_server.stack_state import write_state
from tests.auth.conftest import CLI, AuthStack
from tests.auth.helpers import JWT_SHAPE, MemoryKeyring


def approve(stack: AuthStack, user_code: SecretStr, login: str, action: str = "approve") -> None:
    """What a person does in a browser: the identity platform's own page helper posts the form."""
    complete_device_code(
        stack.platform.verification_uri,
        user_code.get_secret_value(),
        login,
        action,
        ca_cert=stack.platform.ca_cert_path,
    )


def test_device_flow_end_to_end_through_the_form_post(auth_stack: AuthStack, make_manager) -> None:
    manager = make_manager()
    flow = manager.start_device_flow()
    code = flow.prompt.user_code.get_secret_value()
    assert code not in repr(flow.prompt) and code not in repr(
        flow
    )  # masked (Textual crash reports print locals)
    assert code in flow.prompt.message.get_secret_value()
    assert flow.prompt.verification_uri == auth_stack.platform.verification_uri
    assert 0 < flow.prompt.seconds_left() <= 900
    approve(auth_stack, flow.prompt.user_code, "alice")
    account = flow.result(30)
    assert account.username == "alice@contoso.example" and account.name == "Alice Example"
    assert account.oid == auth_stack.oid("alice") and account.tenant_id == auth_stack.tenant.tenant_id

    token = manager.acquire_token()
    assert token.source == "cache"  # silent: served from the keyring cache, no network
    claims = token.claims()
    assert claims["oid"] == auth_stack.oid("alice")
    assert claims["aud"] == auth_stack.platform.api_client_id and claims["scp"] == "execute"
    assert (
        claims["iss"] == auth_stack.platform.issuer and claims["azp"] == auth_stack.platform.console_client_id
    )
    assert token.header()["kid"] and 3000 < token.seconds_left() <= 90 * 60
    assert token.token.get_secret_value() not in repr(token)


def test_declined_and_cancelled_flows(auth_stack: AuthStack, make_manager) -> None:
    manager = make_manager()
    declined = manager.start_device_flow()
    approve(auth_stack, declined.prompt.user_code, "bob", action="decline")
    with pytest.raises(DeviceFlowError) as info:
        declined.result(30)
    assert info.value.error == "authorization_declined" and "declined" in str(info.value)

    pending = manager.start_device_flow()
    pending.start_polling()
    pending.cancel()
    # Only the cancel can end this poll: nobody approves the code and it stays valid for 900 s. MSAL's loop looks
    # between one-second sleeps; the 60 s only bound a hang (a cancel that did not work would poll until expiry).
    with pytest.raises(DeviceFlowCancelled):
        pending.result(60)
    pending.join(60)
    assert pending._thread is not None and not pending._thread.is_alive()
    assert manager.accounts() == []


async def test_tui_style_async_flow_keeps_the_event_loop_free(auth_stack: AuthStack, make_manager) -> None:
    manager = make_manager()
    flow = await manager.start_device_flow_async()
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.02)

    ticking = asyncio.create_task(ticker())
    try:
        waiting = asyncio.create_task(flow.wait())
        await asyncio.sleep(0.2)  # MSAL polls in its worker thread meanwhile
        ticks_while_polling = ticks
        assert not waiting.done()
        await asyncio.to_thread(approve, auth_stack, flow.prompt.user_code, "carol")
        account = await asyncio.wait_for(waiting, 30)
        token = await manager.acquire_token_async(account)
    finally:
        ticking.cancel()
    assert account.username == "carol@contoso.example" and token.claims()["oid"] == auth_stack.oid("carol")
    assert ticks_while_polling >= 2  # the loop kept running while MSAL polled in its worker thread


def test_cli_login_as_then_silent_sign_in_in_a_fresh_process(auth_stack: AuthStack, run_cli) -> None:
    login = run_cli("login", "--as", "alice")
    assert login.code == 0, login.stderr
    assert "Signed in as Alice Example <alice@contoso.example>" in login.stdout
    assert "plain file" in login.stderr  # no OS keyring here: the explicit file store, announced

    who = run_cli("whoami", "--json")
    assert who.code == 0, who.stderr
    doc = json.loads(who.stdout)  # exactly one JSON document on stdout
    assert doc["account"]["username"] == "alice@contoso.example"
    assert doc["token"]["source"] == "cache"  # a fresh process signed in silently from the keyring cache
    claims = doc["token"]["claims"]
    assert claims["oid"] == auth_stack.oid("alice") and claims["tid"] == auth_stack.tenant.tenant_id
    assert claims["preferred_username"] == "alice@contoso.example" and claims["scp"] == "execute"
    assert doc["token"]["meanings"]["oid"].startswith("Object id")
    assert doc["token"]["expiry"].startswith("expires in ")
    assert "warning" in who.stderr and "warning" not in who.stdout

    text = run_cli("whoami")
    assert text.code == 0
    assert "Signed in as Alice Example <alice@contoso.example>" in text.stdout
    assert re.search(r"expires in \d+[hm]", text.stdout)
    assert "└ Audience: the API this token is for" in text.stdout

    # The tokens are at rest only in the keyring store: no token in any other file of the data dir.
    for path in auth_stack.home.rglob("*"):
        if path.is_file() and path.name != "keyring-fallback.cfg":
            assert not JWT_SHAPE.search(path.read_text(errors="ignore")), path
    assert (auth_stack.home / "keyring-fallback.cfg").stat().st_mode & 0o077 == 0


def test_interactive_login_several_accounts_switch_and_logout(auth_stack: AuthStack, run_cli) -> None:
    assert run_cli("login", "--as", "alice").code == 0
    # `login` without --as: a person reads the message on stderr and completes the page in a browser.
    proc = subprocess.Popen(
        [str(CLI), "login"],
        env=auth_stack.env,
        cwd=auth_stack.home,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert proc.stderr is not None
        first = ""
        while "enter the code" not in first:
            first = proc.stderr.readline()
            assert first, "login ended before showing the device-code message"
        code = re.search(r"enter the code ([A-Z0-9-]+)", first)
        assert code and auth_stack.platform.verification_uri in first
        approve(auth_stack, SecretStr(code.group(1)), "bob@contoso.example")
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "Signed in as Bob Example <bob@contoso.example>" in out and "Also signed in: alice@" in out
    assert not JWT_SHAPE.search(out + first + err)

    now = json.loads(run_cli("whoami", "--json").stdout)  # the last sign-in is the current account
    assert now["account"]["username"] == "bob@contoso.example"
    assert sorted(now["accounts"]) == ["alice@contoso.example", "bob@contoso.example"]
    switched = json.loads(run_cli("whoami", "--json", "--user", "alice").stdout)
    assert switched["token"]["claims"]["oid"] == auth_stack.oid("alice")
    assert json.loads(run_cli("whoami", "--json").stdout)["account"]["username"] == "alice@contoso.example"

    out = run_cli("logout", "bob")
    assert (
        out.code == 0
        and "Signed out bob@contoso.example" in out.stdout
        and "Still signed in: alice@" in out.stdout
    )
    assert json.loads(run_cli("whoami", "--json").stdout)["accounts"] == ["alice@contoso.example"]
    missing = run_cli("whoami", "--user", "bob")
    assert missing.code == 1 and "'bob' is not signed in" in missing.stderr

    out = run_cli("logout", "--all")
    assert out.code == 0 and "Signed out 1 account;" in out.stdout
    gone = run_cli("whoami", "--json")
    assert gone.code == 1 and gone.stdout == "" and "Not signed in" in gone.stderr
    assert run_cli("logout").code == 1


def test_chunked_keyring_limited_to_2560_bytes_with_real_msal(auth_stack: AuthStack, make_manager) -> None:
    backend = MemoryKeyring(limit=2560)
    manager = make_manager(backend=backend)
    for login in ("alice", "bob", "carol"):
        manager.sign_in_as(login)
    chunks = [
        user for (service, user) in backend.values if service == KEYRING_SERVICE and user != MANIFEST_USER
    ]
    assert len(chunks) >= 3 and backend.largest <= 2560
    assert len(manager.tokens.cache.serialize().encode("utf-16-le")) > 3 * 2560

    fresh = make_manager(backend=backend)  # new MSAL app, cache reassembled from the chunks
    assert [a.login for a in fresh.accounts()] == ["alice", "bob", "carol"]
    for account in fresh.accounts():
        token = fresh.acquire_token(account)
        assert token.source == "cache" and token.claims()["oid"] == auth_stack.oid(account.login)
    writes = fresh.tokens.cache.writes
    refreshed = fresh.acquire_token(fresh.find_account("bob"), force_refresh=True)  # refresh-token grant
    assert refreshed.source == "identity_provider" and refreshed.claims()["oid"] == auth_stack.oid("bob")
    assert fresh.tokens.cache.writes > writes and backend.largest <= 2560
    again = make_manager(backend=backend).acquire_token(fresh.find_account("bob"))
    assert (
        again.token.get_secret_value() == refreshed.token.get_secret_value()
    )  # the refreshed token persisted


def test_two_processes_signing_in_at_once_lose_nothing(auth_stack: AuthStack, make_manager) -> None:
    procs = [
        subprocess.Popen(
            [str(CLI), "login", "--as", who],
            env=auth_stack.env,
            cwd=auth_stack.home,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for who in ("alice", "bob", "carol")
    ]
    outs = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], outs
    manager = make_manager()
    assert [a.login for a in manager.accounts()] == ["alice", "bob", "carol"]
    for account in manager.accounts():
        assert manager.acquire_token(account).source == "cache"


def test_thread_and_headless_writers_race_on_one_cache(auth_stack: AuthStack, make_manager) -> None:
    """The console (one manager, threads) and a headless command (another process) sign in at the same time."""
    console = make_manager()
    headless = subprocess.Popen(
        [str(CLI), "login", "--as", "carol"],
        env=auth_stack.env,
        cwd=auth_stack.home,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    errors: list[BaseException] = []

    def sign_in(login: str) -> None:
        try:
            make_manager().sign_in_as(login)
        except BaseException as exc:  # pragma: no cover
            errors.append(exc)

    threads = [threading.Thread(target=sign_in, args=(who,)) for who in ("alice", "bob")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert headless.wait(60) == 0 and not errors
    assert [a.login for a in console.accounts()] == ["alice", "bob", "carol"]


def test_login_as_unknown_user_and_wrong_mode(auth_stack: AuthStack, run_cli) -> None:
    bad = run_cli("login", "--as", "mallory")
    assert bad.code == 1 and "no demo user 'mallory'" in bad.stderr and "alice" in bad.stderr
    azure = run_cli("login", "--as", "alice", env={"OBO_CONSOLE_MODE": "azure"})
    assert azure.code == 1 and "--as works only in local mode" in azure.stderr
    with pytest.raises(UserError, match="only in local mode"):
        AuthManager(
            _azure_endpoints(auth_stack),
            settings=Settings(mode="azure", allow_file_keyring=True, keyring_backend="file"),
        ).sign_in_as("alice")


def _azure_endpoints(stack: AuthStack) -> Endpoints:
    return Endpoints(
        mode="azure",
        authority=stack.platform.authority,
        tenant_id=stack.tenant.tenant_id,
        console_client_id=stack.platform.console_client_id,
        api_scope=stack.platform.api_scope,
    )


def test_azure_mode_refuses_a_file_keyring_unless_opted_in(
    auth_stack: AuthStack, run_cli, monkeypatch
) -> None:
    azure = Settings(mode="azure", keyring_backend="file")
    with pytest.raises(FileKeyringRefused) as info:
        AuthManager(_azure_endpoints(auth_stack), settings=azure)
    assert "OBO_CONSOLE_ALLOW_FILE_KEYRING=true" in str(info.value)
    # Autodetection finding no OS keyring is refused too (never silently keyrings.alt).
    monkeypatch.setattr("console.core.auth.keyring_backend.real_os_backends", lambda: [])
    with pytest.raises(FileKeyringRefused):
        AuthManager(_azure_endpoints(auth_stack), settings=Settings(mode="azure"))
    # ... and so is an injected file-backed keyring.
    with pytest.raises(FileKeyringRefused):
        AuthManager(_azure_endpoints(auth_stack), settings=Settings(mode="azure"), backend=file_keyring())

    env = {"OBO_CONSOLE_MODE": "azure", "OBO_CONSOLE_TENANT_ID": auth_stack.tenant.tenant_id}
    refused = run_cli("logout", "--all", env=env)
    assert refused.code == 1 and "Refusing to keep Entra ID tokens in a plain file" in refused.stderr
    opted = run_cli("logout", "--all", env={**env, "OBO_CONSOLE_ALLOW_FILE_KEYRING": "true"})
    assert opted.code == 0 and "plain file" in opted.stderr  # allowed, still with the visible warning

    manager = AuthManager(
        _azure_endpoints(auth_stack),
        settings=Settings(mode="azure", allow_file_keyring=True, keyring_backend="file"),
    )
    assert manager.tokens.choice is not None and manager.tokens.choice.is_file and manager.warning
    # Azure mode never loads the local CA: the local platform's certificate is not trusted there.
    with pytest.raises(SignInError, match="Cannot reach the identity platform"):
        manager.start_device_flow()


def test_clear_errors_without_a_stack_or_sign_in(
    auth_stack: AuthStack, run_cli, isolated_home, make_manager
) -> None:
    not_signed_in = run_cli("whoami")
    assert (
        not_signed_in.code == 1
        and "Not signed in" in not_signed_in.stderr
        and "login --as alice" in not_signed_in.stderr
    )
    with pytest.raises(NotSignedIn):
        make_manager().acquire_token()

    (isolated_home / "local-stack.json").unlink()
    for args in (("whoami", "--json"), ("login", "--as", "alice")):
        result = run_cli(*args)
        assert result.code == 1 and result.stdout == "" and "No local stack is running" in result.stderr
    assert "Traceback" not in result.stderr
    stale = auth_stack.state.model_copy(update={"pid": 2**22 + 12345})
    write_state(stale)
    with pytest.raises(StackNotRunning, match="stopped"):
        resolve_endpoints()
    # logout needs no stack: it only touches the token cache.
    assert run_cli("logout", "--all").code == 0
