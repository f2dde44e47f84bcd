"""Hostile `--connect`: an impostor that serves a copy of the real MCP server's public RFC 9728 metadata must never
receive the user's token. A server reached through --connect gets it only when its metadata's `resource` is the
URL connected to, and its origin is trusted (the configured server, OBO_CONSOLE_TRUSTED_MCP_URLS, or a person's
remembered confirmation); a non-loopback origin must be https.

Everything is real: the session's local stack (identity platform, search service, MCP server), MSAL sign-in, the
console's Workspace, the CLI's main(), and an impostor HTTP listener on loopback that records every request
(tests/security/connect_impostor.py); every impostor is checked for credentials when its test ends."""

from __future__ import annotations

import json
import os
import shutil
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from console.cli import main
from console.core.clock import FixedClock
from console.core.link_state import LinkState
from console.core.mcp_trust import STORE_NAME, OriginRefused, TrustRequest, TrustStore
from console.core.mcp_urls import origin_of
from console.core.server_link import ServerLink
from console.core.settings import Settings, load_settings
from console.core.workspace import Workspace
from mcp_server.errors import UserError
from mcp_server.stack import LocalStack
from tests.agents.helpers import agent, write_configs
from tests.fixtures.workspace import FAST, user_oid
from tests.security.connect_impostor import (
    METADATA_PATH,
    Impostor,
    Person,
    api_identifier,
    connect_workspace,
    copied,
    impostors,
    refuses_to_be_asked,
    sign_in_alice,
    start_refused,
)

ROOT = Path(__file__).resolve().parents[2]
SETTING = "OBO_CONSOLE_TRUSTED_MCP_URLS"


@pytest.fixture
def impostor() -> Iterator[Callable[[], Impostor]]:
    """Start an impostor listener; the test fails if any of them received a credential."""
    with impostors() as start:
        yield start


@pytest.fixture
def alice_signed_in(use_local_stack: LocalStack) -> LocalStack:
    sign_in_alice()
    return use_local_stack


# ---------------------------------------------------------------------------------------------------------------
# The workspace (the console's --connect path)


@pytest.mark.parametrize("rewrite_resource", [False, True], ids=["resource-copied", "resource-rewritten"])
def test_untrusted_impostor_is_sent_nothing_at_all(
    alice_signed_in: LocalStack, impostor: Callable[[], Impostor], rewrite_resource: bool
) -> None:
    fake = copied(impostor(), alice_signed_in, rewrite_resource=rewrite_resource)
    refusal = start_refused(connect_workspace(fake.url))
    origin = origin_of(fake.url)
    assert refusal.rule == "untrusted-origin"
    assert refusal.message == (
        f"Refusing to connect to {fake.url}: {origin} is not a trusted MCP origin, and only origins you trust "
        "receive your token (anyone can copy a server's public metadata). Nothing was sent."
    )
    assert refusal.hint is not None and f"{SETTING}='[\"{fake.url}\"]'" in refusal.hint
    assert fake.requests() == []  # not even the metadata request


@pytest.mark.parametrize("rewrite_resource", [False, True], ids=["resource-copied", "resource-rewritten"])
def test_declined_by_the_person_sends_nothing_and_is_remembered(
    alice_signed_in: LocalStack, impostor: Callable[[], Impostor], rewrite_resource: bool, isolated_home: Path
) -> None:
    fake = copied(impostor(), alice_signed_in, rewrite_resource=rewrite_resource)
    person = Person(answer=False, watching=fake)
    refusal = start_refused(connect_workspace(fake.url, person))
    origin = origin_of(fake.url)
    assert refusal.rule == "declined"
    assert refusal.message == (
        f"Refusing to connect to {fake.url}: you declined to send your token to {origin}. Nothing was sent."
    )
    # The person was shown the origin, the URL and the token's audience before anything was sent.
    assert person.asked == [
        TrustRequest(
            url=fake.url,
            origin=origin,
            audience=api_identifier(alice_signed_in),
            authority=str(alice_signed_in.state.authority),
        )
    ]  # type: ignore[union-attr]
    assert person.requests_before_asked == [0] and fake.requests() == []
    # Remembered: the next console refuses without asking again.
    again = start_refused(connect_workspace(fake.url, refuses_to_be_asked))
    assert again.rule == "declined" and f"you declined to send your token to {origin} on " in again.message
    assert fake.requests() == []
    assert json.loads((isolated_home / STORE_NAME).read_text())["origins"][origin]["trusted"] is False


def test_no_answer_sends_nothing_and_is_not_remembered(
    alice_signed_in: LocalStack, impostor: Callable[[], Impostor], isolated_home: Path
) -> None:
    fake = copied(impostor(), alice_signed_in, rewrite_resource=True)
    refusal = start_refused(connect_workspace(fake.url, Person(answer=None)))
    assert refusal.rule == "unanswered"
    assert refusal.message == (
        f"Refusing to connect to {fake.url}: nobody confirmed that {origin_of(fake.url)} may "
        "receive your token. Nothing was sent."
    )
    assert fake.requests() == [] and not (isolated_home / STORE_NAME).exists()


def test_trusted_in_settings_but_resource_copied_is_refused(
    alice_signed_in: LocalStack, impostor: Callable[[], Impostor]
) -> None:
    fake = copied(impostor(), alice_signed_in, rewrite_resource=False)
    real = fake.metadata["resource"]
    refusal = start_refused(connect_workspace(fake.url, trusted_mcp_urls=[fake.url]))
    assert refusal.rule == "resource-mismatch"
    assert refusal.message == (
        f"Refusing to connect to {fake.url}: its protected-resource metadata names the resource {real}, not the URL "
        "you connect to (RFC 9728 §3.3; metadata copied from another server names that server). No token was sent."
    )
    assert [(s.method, s.path) for s in fake.requests()] == [
        ("GET", METADATA_PATH)
    ]  # only the public document


def test_confirmed_by_the_person_but_resource_copied_is_refused(
    alice_signed_in: LocalStack, impostor: Callable[[], Impostor]
) -> None:
    fake = copied(impostor(), alice_signed_in, rewrite_resource=False)
    person = Person(answer=True, watching=fake)
    refusal = start_refused(connect_workspace(fake.url, person))
    assert refusal.rule == "resource-mismatch" and person.requests_before_asked == [0]
    assert [(s.method, s.path) for s in fake.requests()] == [("GET", METADATA_PATH)]


@pytest.mark.parametrize("resource", [None, "", 42, "{url}/other", "{url}?x=1", "api://{api}"])
def test_resource_other_than_the_url_is_refused(
    alice_signed_in: LocalStack, impostor: Callable[[], Impostor], resource: Any
) -> None:
    fake = copied(impostor(), alice_signed_in, rewrite_resource=True)
    if isinstance(resource, str):
        resource = resource.format(url=fake.url, api=api_identifier(alice_signed_in).removeprefix("api://"))
    if resource is None:
        del fake.metadata["resource"]
    else:
        fake.metadata["resource"] = resource
    refusal = start_refused(connect_workspace(fake.url, trusted_mcp_urls=[fake.url]))
    assert refusal.rule == "resource-mismatch" and refusal.message.endswith("No token was sent.")
    named = isinstance(resource, str) and resource != ""
    assert ("names the resource" if named else "names no resource") in refusal.message
    assert [(s.method, s.path) for s in fake.requests()] == [("GET", METADATA_PATH)]


def test_origins_are_compared_exactly(alice_signed_in: LocalStack, impostor: Callable[[], Impostor]) -> None:
    """Trusting 127.0.0.1:<port> trusts neither localhost:<port> nor another port on 127.0.0.1."""
    fake = copied(impostor(), alice_signed_in, rewrite_resource=True)
    port = int(fake.url.split(":")[2].split("/")[0])
    for trusted in (
        fake.url.replace("127.0.0.1", "localhost"),
        f"http://127.0.0.1:{port + 1}/mcp",
        fake.url.replace("http://", "https://"),
    ):
        refusal = start_refused(connect_workspace(fake.url, trusted_mcp_urls=[trusted]))
        assert refusal.rule == "untrusted-origin", trusted
    assert fake.requests() == []


@pytest.mark.parametrize(
    "url",
    [
        "http://mcp.example.test/mcp",
        "http://10.0.0.5:8000/mcp",
        "http://127.0.0.1.nip.io:8000/mcp",
        "http://[2001:db8::1]:8000/mcp",
    ],
)
def test_plain_http_to_a_non_loopback_origin_is_refused(use_local_stack: LocalStack, url: str) -> None:
    with pytest.raises(UserError) as info:
        Workspace(
            Settings(), connect=url, clock=FixedClock(), link_timings=FAST, trust_prompt=refuses_to_be_asked
        )
    assert (
        "Refusing plain http to " in info.value.message and "would travel unencrypted" in info.value.message
    )
    # Listing it as trusted does not help: the setting itself is refused.
    with pytest.raises(UserError) as listed:
        load_settings(trusted_mcp_urls=json.dumps([url]))
    assert f"{SETTING}[0] ('{url}'): Refusing plain http to " in listed.value.message


def test_a_confirmation_is_remembered_across_workspaces(
    alice_signed_in: LocalStack, impostor: Callable[[], Impostor], isolated_home: Path
) -> None:
    """A server the person trusts (its metadata names its own URL): asked once, remembered in a 0600 file."""
    server = copied(impostor(), alice_signed_in, rewrite_resource=True)
    person = Person(answer=True, watching=server)
    first = connect_workspace(server.url, person)
    try:
        assert first.start().state is LinkState.READY
        assert first.link.trusted_because == "you confirmed it"
    finally:
        first.close()
    assert len(person.asked) == 1 and person.requests_before_asked == [0]
    store = isolated_home / STORE_NAME
    assert stat.S_IMODE(store.stat().st_mode) == 0o600
    entry = json.loads(store.read_text())["origins"][origin_of(server.url)]
    assert entry["trusted"] is True and entry["audience"] == api_identifier(alice_signed_in)
    second = connect_workspace(server.url, refuses_to_be_asked)
    try:
        assert second.start().state is LinkState.READY
        assert second.link.trusted_because is not None
        assert second.link.trusted_because.startswith("you trusted it on ")
    finally:
        second.close()
    # Headless too (no prompt at all): the remembered answer holds.
    with ServerLink(Settings(), connect_url=server.url, timings=FAST) as link:
        assert link.status.state is LinkState.READY


def test_a_confirmation_for_another_audience_does_not_count(
    use_local_stack: LocalStack, impostor: Callable[[], Impostor]
) -> None:
    server = copied(impostor(), use_local_stack, rewrite_resource=True)
    TrustStore().remember(origin_of(server.url), trusted=True, audience="api://some-other-api")
    refusal = start_refused(connect_workspace(server.url))
    assert refusal.rule == "untrusted-origin"
    assert (
        f"{origin_of(server.url)} is not a trusted MCP origin (you answered for tokens for api://some-other-api, "
        f"not {api_identifier(use_local_stack)})"
    ) in refusal.message
    assert server.requests() == []


def test_a_corrupt_trust_file_is_a_clear_error(
    use_local_stack: LocalStack, impostor: Callable[[], Impostor], isolated_home: Path
) -> None:
    server = copied(impostor(), use_local_stack, rewrite_resource=True)
    (isolated_home / STORE_NAME).write_text("{not json")
    ws = connect_workspace(server.url, refuses_to_be_asked)
    with pytest.raises(UserError) as info:
        ws.start()
    ws.close()
    assert (
        info.value.message
        == f"{isolated_home / STORE_NAME} (the MCP origins you trusted or refused) is not valid."
    )
    assert server.requests() == []


# ---------------------------------------------------------------------------------------------------------------
# Trusted in settings: works against the real MCP server


@pytest.fixture
def stack_not_named(local_stack: LocalStack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> LocalStack:
    """The local stack for sign-in, but a state file that does not name its MCP server: that server is then
    trusted only through the setting, as a remote one would be."""
    data = json.loads(local_stack.state_file.read_text())
    data["mcp_url"] = None
    copy = tmp_path / "state-without-mcp.json"
    copy.write_text(json.dumps(data))
    os.chmod(copy, 0o600)
    monkeypatch.setenv("OBO_CONSOLE_STATE_FILE", str(copy))
    return local_stack


@pytest.fixture
def shipped_configs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "configs"
    shutil.copytree(ROOT / "configs", folder)
    monkeypatch.setenv("OBO_CONSOLE_CONFIGS_DIR", str(folder))
    return folder


def test_trusted_in_settings_reaches_the_real_server_and_its_documents(
    stack_not_named: LocalStack, shipped_configs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = str(stack_not_named.state.mcp_url)  # type: ignore[union-attr]
    untrusted = start_refused(Workspace(Settings(), connect=real, clock=FixedClock(), link_timings=FAST))
    assert untrusted.rule == "untrusted-origin"  # this state file does not vouch for it
    monkeypatch.setenv(SETTING, json.dumps([real]))
    ws = Workspace(load_settings(), connect=real, clock=FixedClock(), link_timings=FAST)
    try:
        assert ws.start().state is LinkState.READY
        assert ws.link.trusted_because == f"listed in {SETTING}"
        ws.sign_in_as("alice")
        outcome = ws.send_sync("show my documents", timeout=60)
        assert outcome.error is None
        results = ws.last_search()
        assert results is not None and results.error is None and results.documents  # the real get_documents
        assert results.ran_as.get("oid") == user_oid(stack_not_named, "alice")
        assert ws.session().runner_url == real  # type: ignore[union-attr]
    finally:
        ws.close()


# ---------------------------------------------------------------------------------------------------------------
# Malformed OBO_CONSOLE_TRUSTED_MCP_URLS


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (
            '["https://mcp.example.test/mcp"',
            f"{SETTING} is not valid JSON (Expecting ',' delimiter at character 31); "
            "it must be a JSON list of URLs",
        ),
        ("https://mcp.example.test/mcp", f"{SETTING} is not valid JSON (Expecting value at character 0)"),
        ('{"url": "https://mcp.example.test/mcp"}', f"{SETTING} must be a JSON list of URLs, e.g. "),
        ("[42]", f"{SETTING}[0] is 42, not a URL string"),
        (
            '["mcp.example.test"]',
            f"{SETTING}[0] ('mcp.example.test'): Not an MCP server URL: 'mcp.example.test'.",
        ),
        (
            '["https://user:pw@mcp.example.test/mcp"]',
            f"{SETTING}[0] ('https://user:pw@mcp.example.test/mcp'): The MCP "
            "server URL must not carry credentials",
        ),
    ],
    ids=["unclosed-list", "bare-url", "object", "number", "not-a-url", "credentials"],
)
def test_malformed_trusted_urls_setting_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], value: str, problem: str
) -> None:
    monkeypatch.setenv(SETTING, value)
    with pytest.raises(UserError) as info:
        load_settings()
    assert info.value.message.startswith(f"Invalid settings:\n  {SETTING}: {problem}")
    assert main(["--connect", "https://mcp.example.test/mcp", "ask", "hi"]) == 1
    err = capsys.readouterr().err
    assert (
        err.startswith(f"obo-console: error: Invalid settings:\n  {SETTING}: {problem}")
        and "Traceback" not in err
    )


# ---------------------------------------------------------------------------------------------------------------
# The headless path: obo-console --connect URL ask ...


@pytest.fixture
def ask_configs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = write_configs(
        tmp_path / "ask-configs", {"shelf": agent("Shelf Agent", mcp_servers=["documents"])}
    )
    monkeypatch.setenv("OBO_CONSOLE_CONFIGS_DIR", str(directory))
    return directory


@pytest.mark.parametrize("rewrite_resource", [False, True], ids=["resource-copied", "resource-rewritten"])
def test_ask_connect_refuses_an_untrusted_impostor(
    use_local_stack: LocalStack,
    ask_configs: Path,
    impostor: Callable[[], Impostor],
    capsys: pytest.CaptureFixture[str],
    rewrite_resource: bool,
) -> None:
    assert main(["login", "--as", "alice"]) == 0
    capsys.readouterr()
    fake = copied(impostor(), use_local_stack, rewrite_resource=rewrite_resource)
    assert main(["--connect", fake.url, "ask", "show my documents", "--agent", "shelf", "--json"]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err == (
        f"obo-console: error: Refusing to connect to {fake.url}: {origin_of(fake.url)} is not a trusted "
        "MCP origin, and only origins you trust receive your token (anyone can copy a server's public "
        f"metadata). Nothing was sent.\n  → If you trust it, add it to {SETTING}, e.g. "
        f"{SETTING}='[\"{fake.url}\"]', or confirm it once in the full-screen console (obo-console "
        f"--connect {fake.url}).\n"
    )
    assert fake.requests() == []


def test_ask_connect_refuses_a_trusted_origin_serving_copied_metadata(
    use_local_stack: LocalStack,
    ask_configs: Path,
    impostor: Callable[[], Impostor],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert main(["login", "--as", "alice"]) == 0
    fake = copied(impostor(), use_local_stack, rewrite_resource=False)
    monkeypatch.setenv(SETTING, json.dumps([fake.url]))
    capsys.readouterr()
    assert main(["--connect", fake.url, "ask", "show my documents", "--agent", "shelf"]) == 1
    assert "its protected-resource metadata names the resource " in capsys.readouterr().err
    assert [(s.method, s.path) for s in fake.requests()] == [("GET", METADATA_PATH)]


def test_ask_connect_honours_a_trusted_server(
    stack_not_named: LocalStack,
    ask_configs: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = str(stack_not_named.state.mcp_url)  # type: ignore[union-attr]
    assert main(["login", "--as", "alice"]) == 0
    capsys.readouterr()
    assert main(["--connect", real, "ask", "show my documents", "--agent", "shelf", "--json"]) == 1
    assert (
        f"{SETTING}='[\"{real}\"]'" in capsys.readouterr().err
    )  # not trusted yet: refused, saying what to add
    monkeypatch.setenv(SETTING, json.dumps([real]))
    assert main(["--connect", real, "ask", "show my documents", "--agent", "shelf", "--json"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    search = [line for line in lines if line["kind"] == "search_results"]
    assert len(search) == 1 and search[0]["documents"] and search[0]["error"] is None
    assert search[0]["ran_as"]["oid"] == user_oid(stack_not_named, "alice")
    assert lines[-1]["kind"] == "answer" and lines[-1]["error"] is None


@pytest.mark.parametrize("command", [["whoami"], ["login", "--as", "alice"], ["configs", "list"]])
def test_connect_with_a_command_that_would_ignore_it_is_refused(
    command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--connect", "https://mcp.example.test/mcp", *command]) == 2
    assert capsys.readouterr().err.startswith(
        f"obo-console: error: --connect is not used by `obo-console {command[0]}`: only the console and `ask` talk "
        "to an MCP server."
    )


# ---------------------------------------------------------------------------------------------------------------
# The console: the confirmation screen, before anything is sent


async def _until_trust_screen(pilot: Any) -> Any:
    from console.ui.screens.trust import TrustScreen
    from tests.ui.helpers import until

    await until(
        pilot,
        lambda: (
            isinstance(pilot.app.screen, TrustScreen)
            and pilot.app.screen.is_mounted
            and bool(pilot.app.screen.query("#trust-no"))
        ),
        60,
        "the trust confirmation",
    )
    await pilot.pause()
    return pilot.app.screen


def _screen_text(screen: Any) -> str:
    from textual.widgets import Label, Static

    return (
        "\n".join(str(w.render()) for w in screen.query(Static) if not isinstance(w, Label))
        + "\n"
        + "\n".join(str(w.render()) for w in screen.query(Label))
    )


@pytest.mark.parametrize("key", ["n", "escape", "enter"])
async def test_console_shows_origin_and_audience_and_a_refusal_sends_nothing(
    alice_signed_in: LocalStack, impostor: Callable[[], Impostor], key: str
) -> None:
    from console.ui.app import OboConsoleApp
    from tests.ui.helpers import until

    fake = copied(impostor(), alice_signed_in, rewrite_resource=True)
    ws = Workspace(Settings(), connect=fake.url, clock=FixedClock(), link_timings=FAST)
    app = OboConsoleApp(workspace=ws)
    try:
        async with app.run_test(size=(160, 45)) as pilot:
            screen = await _until_trust_screen(pilot)
            text = _screen_text(screen)
            assert (
                origin_of(fake.url) in text and fake.url in text and api_identifier(alice_signed_in) in text
            )
            assert fake.requests() == []  # shown before anything was sent
            await pilot.press(key)  # enter: the focused button is "Refuse"
            await until(pilot, lambda: app.startup_error is not None, 30, "the refusal")
            assert app.startup_error == (
                f"Refusing to connect to {fake.url}: you declined to send your token to "
                f"{origin_of(fake.url)}. Nothing was sent."
            )
    finally:
        ws.close()
    assert fake.requests() == []


async def test_console_trusts_after_y_and_remembers(
    alice_signed_in: LocalStack, impostor: Callable[[], Impostor], isolated_home: Path
) -> None:
    from console.ui.app import OboConsoleApp
    from tests.ui.helpers import until

    server = copied(impostor(), alice_signed_in, rewrite_resource=True)
    ws = Workspace(Settings(), connect=server.url, clock=FixedClock(), link_timings=FAST)
    app = OboConsoleApp(workspace=ws)
    try:
        async with app.run_test(size=(160, 45)) as pilot:
            await _until_trust_screen(pilot)
            assert server.requests() == []
            await pilot.press("y")
            await until(
                pilot, lambda: ws.server_status().state is LinkState.READY, 30, "the link to be ready"
            )
            assert ws.link.trusted_because == "you confirmed it"
    finally:
        ws.close()
    assert (
        json.loads((isolated_home / STORE_NAME).read_text())["origins"][origin_of(server.url)]["trusted"]
        is True
    )
    assert [s.path for s in server.requests()][0] == METADATA_PATH  # only after the answer


async def test_console_quit_while_asking_sends_nothing_and_remembers_nothing(
    alice_signed_in: LocalStack, impostor: Callable[[], Impostor], isolated_home: Path
) -> None:
    from console.ui.app import OboConsoleApp

    fake = copied(impostor(), alice_signed_in, rewrite_resource=True)
    ws = Workspace(Settings(), connect=fake.url, clock=FixedClock(), link_timings=FAST)
    refused: list[BaseException] = []
    real_start = ws.start

    def start() -> Any:
        try:
            return real_start()
        except OriginRefused as exc:
            refused.append(exc)
            raise

    ws.start = start  # type: ignore[method-assign]
    app = OboConsoleApp(workspace=ws)
    try:
        async with app.run_test(size=(160, 45)) as pilot:
            await _until_trust_screen(pilot)
            await pilot.press("ctrl+q")
    finally:
        ws.close()
    assert ws.link.wait_for(LinkState.STOPPED, timeout=30).state is LinkState.STOPPED
    assert fake.requests() == [] and not (isolated_home / STORE_NAME).exists()
