"""Secret hygiene end to end. The real local stack, the real sign-in (MSAL device flow completed on the page as
alice), the real workspace and agents (offline model): documents, a handoff and back, documents again (an OBO
cache hit). Then an export, the console's screens (main and presenter) captured, and a Textual crash report with
the real secret-holding objects as local variables. Every log record, event, trace, session database, export,
screen and the crash report is scanned for a JWT-shaped string, the API's client secret, the search API key and
the device user codes of the flow: none may appear."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from textual.app import App
from textual.widgets import Static

from console.core.agents.tracing import active_processors
from console.core.auth import device_page
from console.core.auth.keyring_backend import FILE_KEYRING_NAME
from console.core.events import Event, HandoffOccurred, SearchResults
from console.core.export import export_session
from console.core.flow import StepState
from console.core.sessions import SessionStore
from console.core.workspace import Workspace
from console.ui.app import OboConsoleApp
from console.ui.screens.presenter import PresenterScreen
from mcp_server.paths import data_dir
from mcp_server.stack import LocalStack
from mcp_server.stack_state import read_state
from tests.presenter.screen_text import screen_text

JWT = re.compile(r"eyJ[\w-]+\.[\w-]+\.[\w-]*")
# Where tokens legitimately rest: the keyring's file store (docs/contracts.md: tokens rest only in the keyring;
# tests use the explicit file backend) and its lock.
KEYRING_FILES = re.compile(rf"^{re.escape(FILE_KEYRING_NAME)}(\.lock)?$")


class Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def log_capture() -> Iterator[Capture]:
    capture = Capture()
    root = logging.getLogger()
    level = root.level
    root.addHandler(capture)
    root.setLevel(logging.DEBUG)
    try:
        yield capture
    finally:
        root.removeHandler(capture)
        root.setLevel(level)


@pytest.fixture
def user_codes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every device user code the flow uses (recorded as the page is completed)."""
    codes: list[str] = []
    real = device_page.complete_device_page

    def spy(session: Any, uri: str, user_code: Any, *args: Any, **kwargs: Any) -> Any:
        codes.append(
            user_code.get_secret_value() if hasattr(user_code, "get_secret_value") else str(user_code)
        )
        return real(session, uri, user_code, *args, **kwargs)

    monkeypatch.setattr(device_page, "complete_device_page", spy)
    return codes


class Leaks:
    def __init__(self, secrets: dict[str, str]) -> None:
        self.secrets = {name: value for name, value in secrets.items() if value}
        self.found: list[str] = []
        self.scanned: dict[str, int] = {}

    def scan(self, where: str, text: str) -> None:
        self.scanned[where] = self.scanned.get(where, 0) + len(text)
        for match in JWT.finditer(text):
            self.found.append(f"{where}: JWT-shaped {match.group(0)[:16]}…")
        for name, value in self.secrets.items():
            if value in text:
                self.found.append(f"{where}: {name}")

    def scan_file(self, path: Path) -> None:
        self.scan(str(path), path.read_bytes().decode("latin-1"))


def crash_report(objects: dict[str, Any]) -> str:
    """Run a Textual app that fails with ``objects`` as local variables; the crash report as printed."""

    class Crashing(App[None]):
        def compose(self) -> Any:
            yield Static("about to fail")

        def on_mount(self) -> None:
            state = objects["state"]  # noqa: F841 - locals are what the crash report prints
            token = objects["token"]  # noqa: F841
            flow = objects["flow"]  # noqa: F841
            settings = objects["settings"]  # noqa: F841
            claims = objects["claims"]  # noqa: F841
            canary = objects["canary"]  # noqa: F841
            raise RuntimeError("a bug while holding secrets")

    out = io.StringIO()
    app = Crashing()
    app.error_console = Console(file=out, width=160, force_terminal=False)

    async def run() -> None:
        async with app.run_test() as pilot:
            await pilot.pause()

    import asyncio

    with pytest.raises(RuntimeError, match="a bug while holding secrets"):
        asyncio.run(run())
    return out.getvalue()


def test_no_token_or_secret_anywhere_after_a_full_flow(
    workspace: Workspace, local_stack: LocalStack, user_codes: list[str], log_capture: Capture
) -> None:
    ws = workspace
    events: list[Event] = []
    ws.bus.subscribe(events.append)

    # sign-in (device flow, page completed as alice), then record alice's conversation as it happens
    alice = ws.sign_in_as("alice")
    store = SessionStore(alice)
    session = store.new_session(ws.main_agent)
    store.attach(ws.bus, session)

    # documents, a handoff and back, documents again
    assert ws.send_sync("show my documents", timeout=60).error is None
    first = ws.last_search()
    assert first is not None and first.documents and first.error is None
    assert ws.send_sync("I want to run a simulation", timeout=60).error is None
    assert any(isinstance(e, HandoffOccurred) for e in events)
    ws.back_to_main()
    assert ws.send_sync("show my documents", timeout=60).error is None
    assert sum(isinstance(e, SearchResults) for e in events) == 2

    # export
    paths = export_session(store, session, user_claims=ws.user_claims(), obo_claims=ws.obo_claims())

    # the console's screens over this workspace: the main screen and the presenter view
    screens: dict[str, str] = {}

    async def capture_screens() -> None:
        app = OboConsoleApp(workspace=ws, start_workspace=False)
        async with app.run_test(size=(160, 45)) as pilot:
            await pilot.pause()
            await app.main_screen.rebuild_for_account()
            await pilot.pause()
            screens["main"] = screen_text(app)
            screens["main.svg"] = app.export_screenshot()
            await app.push_screen(PresenterScreen(lambda: app.workspace))
            await pilot.pause()
            presenter = app.screen
            assert isinstance(presenter, PresenterScreen)
            # the presenter shows the real flow: every step lit, the second search served from the OBO cache
            assert presenter.step_states == [
                StepState.DONE,
                StepState.DONE,
                StepState.DONE,
                StepState.CACHE_HIT,
                StepState.DONE,
            ]
            screens["presenter"] = screen_text(app)
            screens["presenter.svg"] = app.export_screenshot()

    import asyncio

    asyncio.run(capture_screens())
    assert "https://search.azure.com" in screens["presenter"] and alice.name in screens["presenter"]

    # a crash report with the real secret holders as locals
    state = read_state(local_stack.state_file)
    assert state is not None
    flow = ws.begin_device_flow()
    user_codes.append(flow.user_code.get_secret_value())
    try:
        token = ws.auth.acquire_token(ws.auth.current_account())
        report = crash_report(
            {
                "state": state,
                "token": token,
                "flow": flow,
                "settings": ws.settings,
                "claims": token.claims(),
                "canary": alice.oid,
            }
        )
    finally:
        flow.cancel()
    assert (
        alice.oid in report and "RuntimeError: a bug while holding secrets" in report
    )  # locals were printed
    assert "SecretStr('**********')" in report  # ... and the secrets among them only masked

    assert state.api_client_secret is not None and state.search_api_key is not None
    leaks = Leaks(
        {
            "client secret": state.api_client_secret.get_secret_value(),
            "search API key": state.search_api_key.get_secret_value(),
            **{f"user code {i + 1}": code for i, code in enumerate(user_codes)},
        }
    )
    assert len(user_codes) == 2 and all(user_codes)
    # the scanner does find what it looks for
    probe = Leaks(leaks.secrets)
    probe.scan("probe", f"{token.token.get_secret_value()} {user_codes[0]}")
    assert len(probe.found) == 2

    for line in log_capture.lines:
        leaks.scan("log", line)
    leaks.scan("server log", "\n".join(ws.server_log()))
    for event in events:
        leaks.scan(f"event {event.kind}", json.dumps(event.to_dict(), default=str))
    leaks.scan("crash report", report)
    for name, text in screens.items():
        leaks.scan(f"screen {name}", text)
    every_file = [p for p in data_dir().rglob("*") if p.is_file()]
    assert any(KEYRING_FILES.match(p.name) for p in every_file), "the tokens were kept somewhere else"
    files = [p for p in every_file if not KEYRING_FILES.match(p.name)]
    trace_dirs = {getattr(p, "directory", None) for p in active_processors()} - {None}
    files += [p for d in trace_dirs for p in Path(str(d)).glob("*.jsonl")]
    for path in files:
        leaks.scan_file(path)

    scanned = {Path(p).parent.name for p in leaks.scanned if p.startswith("/")}
    assert {"sessions", "exports"} <= scanned
    assert any(p.suffix == ".jsonl" and "traces" in str(p) for p in files), "no trace file was scanned"
    assert paths.markdown in files and paths.trace in files
    markdown = paths.markdown.read_text()
    assert "| aud | https://search.azure.com |" in markdown and "show my documents" in markdown
    assert len(log_capture.lines) > 10 and len(events) > 20
    print(
        "scanned:",
        json.dumps(leaks.scanned, indent=1),
        "\nkept out:",
        [p.name for p in every_file if p not in files],
    )  # visible with -s: what the scan covered
    assert leaks.found == [], "\n".join(leaks.found)
