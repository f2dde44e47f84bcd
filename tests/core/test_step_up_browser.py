"""The step-up without the demo shortcut (Azure mode), end to end in the core: a Workspace with Azure-mode settings
pointed at the local stack (real MSAL, its interactive flow with PKCE and its own loopback listener; the real MCP
server and search service; the offline model). Carol signs in in the browser (no MFA: nothing asks for it), asks
for her documents, the MCP server relays the claims challenge, and the console signs her in again in the system
browser with the claims: the person at the browser (tests/fixtures/browser_person.py) completes the page, the
multi-factor number step included, and the turn runs once more. A person who declines ends the step-up failed,
with the command that does it from a shell, and the turn is not retried."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from urllib.parse import parse_qsl, urlsplit

import pytest

from console.cli import main
from console.core.describe import describe, step_up_notice
from console.core.events import Event, SearchResults, StepUp, StepUpStatus, TurnEnded, TurnStarted
from console.core.step_up_flow import CANCELLED, IN_BROWSER
from console.core.workspace import Workspace
from mcp_server.stack import LocalStack
from tests.fixtures.browser_person import BrowserPerson
from tests.fixtures.stack import OwnServer, azure_mode_env
from tests.fixtures.workspace import FAST, workspace_on
from tests.server.helpers import expected_names

MFA_POLICY = "9ab03e19-ed42-4168-b6b7-7001fb3e933a"
CLAIMS = {"access_token": {"capolids": {"essential": True, "values": [MFA_POLICY]}}}
CAROL = "carol@contoso.example"
TURN = 180.0


def azure_env(stack: LocalStack, mcp_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Azure-mode settings naming the local stack's identity platform and an MCP server on it (no state file)."""
    state = stack.state
    assert state is not None and state.ca_cert
    settings = azure_mode_env(state, mcp_url, stack.state_file.with_name("no-such-state.json"))
    for name, value in settings.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def azure_workspace(
    local_stack: LocalStack, own_mcp_server: OwnServer, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Workspace]:
    azure_env(local_stack, own_mcp_server.mcp_url, monkeypatch)  # its own OBO cache: no earlier MFA token
    with workspace_on(FAST, start=True) as ws:
        yield ws


def sign_in_carol(ws: Workspace, person: BrowserPerson) -> None:
    person.login = "carol"
    info = ws.begin_browser_sign_in().result(120)
    assert info.username == CAROL and person.errors == []
    assert ws.user_claims()["amr"] == ["pwd"]  # the page asked for no second step


def test_azure_mode_step_up_signs_carol_in_again_in_the_browser(
    azure_workspace: Workspace, person: BrowserPerson, local_stack: LocalStack
) -> None:
    ws = azure_workspace
    assert ws.mode == "azure" and ws.demo_users() == []  # no shortcut here
    sign_in_carol(ws, person)
    events: list[Event] = []
    ws.bus.subscribe(events.append)
    outcome = ws.send_sync("show my documents", timeout=TURN)
    assert outcome.error is None and person.errors == [], (outcome.error, person.errors)

    steps = [e for e in events if isinstance(e, StepUp)]
    assert [(s.status, s.how) for s in steps] == [
        (StepUpStatus.REQUIRED, ""),
        (StepUpStatus.SIGNING_IN, ""),
        (StepUpStatus.SIGNING_IN, IN_BROWSER),
        (StepUpStatus.DONE, "signed in again in the browser"),
    ]
    page = steps[2].url
    assert page == person.opened[1]  # the URL in the event is the page the browser got
    query = dict(parse_qsl(urlsplit(page).query))
    assert query["login_hint"] == CAROL and query["code_challenge_method"] == "S256"
    assert json.loads(query["claims"]) == CLAIMS  # MSAL's claims_challenge
    assert query["redirect_uri"].startswith("http://localhost:")
    assert not {"code", "access_token", "id_token", "refresh_token"} & set(query)  # no token in the URL
    assert step_up_notice(steps[2]) == (f"Step-up (multi-factor authentication): {IN_BROWSER}: {page}")
    assert dict(describe(steps[2]).details)["sign-in page"] == page
    assert describe(steps[2]).line() == (
        "step-up signing_in: signing in again with the claims challenge (multi-factor authentication); "
        f"{IN_BROWSER}"
    )
    done = steps[-1]
    assert (done.policy, done.resource, done.aadsts) == (MFA_POLICY, "https://search.azure.com", 50076)
    assert (done.amr_before, done.amr_after) == (["pwd"], ["pwd", "mfa"])
    assert ws.user_claims()["amr"] == ["pwd", "mfa"]

    started = [e for e in events if isinstance(e, TurnStarted)]
    assert len(started) == 2 and started[1].retry_of == started[0].turn_id
    results = [e for e in events if isinstance(e, SearchResults)]
    assert results[0].aadsts == "AADSTS50076" and results[0].documents == []
    assert {d["name"] for d in results[-1].documents} == expected_names(local_stack, "carol")
    assert results[-1].obo_claims["amr"] == ["pwd", "mfa"]
    history = ws.history()
    assert [e.role for e in history] == ["user", "notice", "notice", "assistant"]
    assert history[2].text == step_up_notice(steps[2]) and not history[2].error


def test_a_person_who_declines_ends_the_step_up_failed_with_the_command(
    azure_workspace: Workspace, person: BrowserPerson, capsys: pytest.CaptureFixture[str]
) -> None:
    ws = azure_workspace
    sign_in_carol(ws, person)
    events: list[Event] = []
    ws.bus.subscribe(events.append)
    person.decline = True
    outcome = ws.send_sync("show my documents", timeout=TURN)
    assert person.errors == []

    steps = [e for e in events if isinstance(e, StepUp)]
    assert [s.status for s in steps] == [
        StepUpStatus.REQUIRED,
        StepUpStatus.SIGNING_IN,
        StepUpStatus.SIGNING_IN,
        StepUpStatus.FAILED,
    ]
    failed = steps[-1]
    encoded = failed.hint.rsplit("--claims ", 1)[1].split("`", 1)[0]
    assert json.loads(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))) == CLAIMS
    assert failed.hint == (
        "Browser sign-in failed: access_denied (AADSTS65004: User declined to consent to access the app.) "
        f"Run `obo-console login --browser --claims {encoded}` and complete the page in the browser, "
        "then ask again."
    )
    # No retry: one turn, ended in the challenge's words; carol's sign-in is unchanged.
    assert len([e for e in events if isinstance(e, TurnStarted)]) == 1
    assert [e.error for e in events if isinstance(e, TurnEnded)] == [outcome.error]
    assert outcome.error == (
        "Conditional Access requires multi-factor authentication for https://search.azure.com "
        f"(policy {MFA_POLICY}, AADSTS50076): no documents were returned."
    )
    assert ws.user_claims()["amr"] == ["pwd"]
    history = ws.history()
    assert [e.role for e in history] == ["user", "notice", "notice", "notice"]
    assert history[-1].text == f"Step-up failed (multi-factor authentication): {failed.hint}"
    assert history[-1].error

    # The command the hint names works: the same sign-in from a shell (the person now completes the page).
    person.decline, person.login = False, "carol"
    assert main(["login", "--browser", "--claims", encoded]) == 0
    assert person.errors == [] and len(person.opened) == 3  # sign-in, declined step-up, the command's page
    assert json.loads(dict(parse_qsl(urlsplit(person.opened[-1]).query))["claims"]) == CLAIMS
    capsys.readouterr()
    assert main(["whoami", "--json"]) == 0
    token = json.loads(capsys.readouterr().out)["token"]
    assert (token["claims"]["preferred_username"], token["claims"]["amr"]) == (CAROL, ["pwd", "mfa"])


def test_stopping_the_turn_while_the_browser_waits_cancels_the_sign_in(
    azure_workspace: Workspace, person: BrowserPerson
) -> None:
    ws = azure_workspace
    sign_in_carol(ws, person)
    events: list[Event] = []
    page_shown = threading.Event()

    def seen(event: Event) -> None:
        events.append(event)
        if isinstance(event, StepUp) and event.url:
            page_shown.set()

    ws.bus.subscribe(seen)
    person.login = ""  # the page opens; nobody completes it
    turn = ws.submit("show my documents")
    assert page_shown.wait(TURN)
    assert ws.stop_turn()
    outcome = turn.result(TURN)
    assert outcome.cancelled and outcome.error == "cancelled"
    failed = [e for e in events if isinstance(e, StepUp)][-1]
    assert failed.status is StepUpStatus.FAILED
    assert failed.hint.startswith(f"{CANCELLED} Run `obo-console login --browser --claims ")
    assert len([e for e in events if isinstance(e, TurnStarted)]) == 1  # no retry
    # MSAL's listener heard the cancel: the next browser sign-in runs (one runs at a time per process).
    person.login = "carol"
    assert ws.begin_browser_sign_in().result(120).username == CAROL
    assert ws.user_claims()["amr"] == ["pwd"]


def test_a_sign_in_as_someone_else_does_not_step_carol_up(
    azure_workspace: Workspace, person: BrowserPerson
) -> None:
    """The page is for carol (login_hint) but the person signs in as bob: the step-up fails, carol stays current."""
    ws = azure_workspace
    sign_in_carol(ws, person)
    events: list[Event] = []
    ws.bus.subscribe(events.append)
    person.login = "bob"
    outcome = ws.send_sync("show my documents", timeout=TURN)
    assert person.errors == [] and outcome.error is not None
    failed = [e for e in events if isinstance(e, StepUp)][-1]
    assert failed.status is StepUpStatus.FAILED
    assert failed.hint.startswith(
        f"The browser signed in bob@contoso.example, not {CAROL}. Run `obo-console login --browser --claims "
    )
    assert len([e for e in events if isinstance(e, TurnStarted)]) == 1
    assert ws.current_account is not None and ws.current_account.username == CAROL
    assert ws.user_claims()["amr"] == ["pwd"]
