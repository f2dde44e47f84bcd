"""A small in-memory workspace with FIXED data, for snapshot tests and UI-only Pilot tests.

It implements console.ui.protocols.WorkspaceLike with the core's own types (tests/ui/test_contract.py checks it
against the protocol, as it checks the real Workspace) and publishes real console.core.events on a real EventBus; the
end-to-end tests (test_flow.py) use the real console.core.workspace.Workspace instead. Its scripted turns run on the
loop of whoever submits them (the UI's), so a test holds one with an ``asyncio.Event`` (``hold``).
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import SecretStr

from console.core.clock import Clock, FixedClock
from console.core.events import (
    AccountChanged,
    Event,
    EventBus,
    HandoffOccurred,
    SearchResults,
    ServerStep,
    TextDelta,
    ToolEnded,
    ToolStarted,
    TurnEnded,
    TurnStarted,
)
from console.core.link_state import LinkState, LinkStatus
from console.core.mcp_trust import TrustPrompt
from console.core.sessions import SessionSummary
from console.core.workspace_views import (
    AccountInfo,
    AgentInfo,
    ChatEntry,
    Claims,
    ConfigInfo,
    Role,
    TurnOutcome,
)
from mcp_server.errors import UserError

T0 = FixedClock.DEFAULT_START.timestamp()
TENANT = "7d3c1f1e-2b7a-4c55-9a51-3f0c6f1d2a10"
API = "5b1e6f0a-7c4d-4e8b-9f21-0d6a3c2b1e90"
USERS = {
    "alice": (
        "Alice Adams",
        "1a1a1a1a-0000-4000-8000-000000000001",
        ["f1f1f1f1-0000-4000-8000-00000000000f"],
    ),
    "bob": ("Bob Baker", "2b2b2b2b-0000-4000-8000-000000000002", ["e2e2e2e2-0000-4000-8000-00000000000e"]),
    "carol": (
        "Carol Clark",
        "3c3c3c3c-0000-4000-8000-000000000003",
        ["d3d3d3d3-0000-4000-8000-00000000000d"],
    ),
}
DOCS = {
    "alice": [
        ("Quarterly finance report", ["all"], ["f1f1f1f1-0000-4000-8000-00000000000f"], 2.731),
        ("Alice's onboarding notes", ["1a1a1a1a-0000-4000-8000-000000000001"], [], 2.104),
        ("Company holiday calendar", [], ["all"], 1.502),
    ],
    "bob": [
        ("Engineering roadmap", [], ["e2e2e2e2-0000-4000-8000-00000000000e"], 2.402),
        ("Company holiday calendar", [], ["all"], 1.502),
    ],
}


@dataclass
class _FakeSignIn:
    """A sign-in in progress: done when ``complete`` or ``cancel`` says so (keyword-only: subclasses' fields first)."""

    outcome: Future[AccountInfo] = field(default_factory=Future, kw_only=True)
    cancelled: bool = field(default=False, kw_only=True)

    def signed_in(self) -> Future[AccountInfo]:
        return self.outcome

    def cancel(self) -> None:
        self.cancelled = True
        if not self.outcome.done() and self.outcome.set_running_or_notify_cancel():
            self.outcome.set_exception(RuntimeError("Sign-in cancelled."))

    def complete(self, account: AccountInfo) -> None:
        if not self.outcome.done() and self.outcome.set_running_or_notify_cancel():
            self.outcome.set_result(account)


@dataclass
class FakeFlow(_FakeSignIn):
    """A device-code sign-in (console.ui.protocols.DeviceSignIn): done when ``sign_in_as`` or ``cancel`` says so."""

    user_code: SecretStr = SecretStr("FKXW-QTRP")
    verification_uri: str = "https://127.0.0.1:8443/7d3c1f1e/oauth2/deviceauth"
    expires_at: float = T0 + 900


@dataclass
class FakeBrowserSignIn(_FakeSignIn):
    """A browser sign-in (console.ui.protocols.BrowserSignIn): done when ``complete`` or ``cancel`` says so."""

    as_user: str | None = None
    auth_uri: str | None = "https://127.0.0.1:8443/7d3c1f1e/oauth2/v2.0/authorize?client_id=ad51"


AGENTS = {
    "conversation": AgentInfo(
        "conversation",
        "Conversation agent",
        "offline-demo",
        "offline",
        tools=("get_time", "get_date"),
        agents_as_tools=("weather", "news"),
        handoffs=("simulator",),
    ),
    "documents": AgentInfo(
        "documents", "Documents agent", "offline-demo", "offline", tools=("get_documents",)
    ),
    "simulator": AgentInfo(
        "simulator",
        "Simulator agent",
        "offline-demo",
        "offline",
        tools=("simulate_loan",),
        handoffs=("conversation",),
    ),
}


def config(
    key: str,
    *,
    valid: bool = True,
    serving: bool = True,
    errors: tuple[str, ...] = (),
    warnings: tuple[str, ...] = (),
) -> ConfigInfo:
    return ConfigInfo(
        key,
        key,
        f"configs/{key}.json",
        valid=valid,
        serving=serving,
        serving_last_good=serving and not valid,
        errors=errors,
        warnings=warnings,
    )


READY = LinkStatus(LinkState.READY, url="http://127.0.0.1:8000/mcp", launched=True)


def server_at(state: LinkState, *, detail: str = "", attempt: int = 0) -> LinkStatus:
    """The fake server's status in ``state`` (same URL)."""
    return dataclasses.replace(READY, state=state, detail=detail, attempt=attempt)


class FakeWorkspace:
    mode = "local"

    def __init__(self, *, signed_in: str | None = "alice", clock: FixedClock | None = None) -> None:
        self.bus = EventBus()
        self.clock: Clock = clock or FixedClock()
        self._accounts: dict[str, AccountInfo] = {}
        self._current: str | None = None
        self._history: dict[str, list[ChatEntry]] = {}
        self._search: dict[str, SearchResults] = {}
        self.main_agent: str | None = "conversation"
        self._active = "conversation"
        self._chain = ["conversation"]
        self.flows: list[FakeFlow] = []
        self.browser_flows: list[FakeBrowserSignIn] = []
        self.calls: list[str] = []
        self.status = READY
        self.trust_prompt: TrustPrompt | None = None
        self.log_lines = [
            "INFO  local identity platform on https://127.0.0.1:8443",
            "INFO  local search service on https://127.0.0.1:8444",
            "INFO  MCP server on http://127.0.0.1:8000/mcp",
        ]
        self._log_followers: list[Callable[[str], None]] = []
        self.config_list = [
            config("conversation"),
            config("documents"),
            config("news", warnings=("$.tools[0]: web_search needs a hosted model",)),
            config("simulator", valid=False, errors=("$.model: 42 is not of type 'string'",)),
        ]
        self._stop = asyncio.Event()
        # Saved conversations per account: session id → its messages (the current one is self._history's).
        self.saved: dict[str, dict[str, list[ChatEntry]]] = {}
        self._session_id: dict[str, str] = {}
        self.exported_to: list[Path] = []
        self._events: list[Event] = []
        self.bus.subscribe(self._events.append)
        self.answers: dict[str, str] = {}  # scripted answers by question (otherwise the echo below)
        self.hold: asyncio.Event | None = None  # when given, a turn waits for it before answering
        self.reset_refusal: UserError | None = (
            None  # when given, reset_conversation raises it (a turn that hangs)
        )
        if signed_in:
            self._add_account(signed_in)
            self._current = self._accounts[signed_in].username

    # ---- lifecycle
    def start(self) -> LinkStatus:
        self.calls.append("start")
        return self.status

    def close(self) -> None:
        self.calls.append("close")

    def set_trust_prompt(self, prompt: TrustPrompt | None) -> None:
        self.trust_prompt = prompt

    # ---- accounts
    def _add_account(self, short: str) -> AccountInfo:
        name = USERS[short][0]
        account = AccountInfo(f"{short}@contoso.example", name)
        self._accounts[short] = account
        self._history.setdefault(account.username, [])
        return account

    def accounts(self) -> list[AccountInfo]:
        return list(self._accounts.values())

    @property
    def current_account(self) -> AccountInfo | None:
        return next((a for a in self._accounts.values() if a.username == self._current), None)

    def _set_current(self, username: str | None) -> None:
        previous, self._current = self._current, username
        self.bus.publish(AccountChanged(account=username, previous=previous, ts=self.clock.time()))

    def switch_account(self, username: str) -> AccountInfo:
        self.calls.append(f"switch:{username}")
        self._set_current(username)
        account = self.current_account
        assert account is not None
        return account

    def sign_out(self, username: str | None = None) -> AccountInfo | None:
        self.calls.append("sign_out")
        short = (username or self._current or "").split("@")[0]
        self._accounts.pop(short, None)
        self._set_current(next(iter(a.username for a in self._accounts.values()), None))
        return self.current_account

    def begin_device_flow(self) -> FakeFlow:
        flow = FakeFlow()
        self.flows.append(flow)
        return flow

    def begin_browser_sign_in(self, as_user: str | None = None) -> FakeBrowserSignIn:
        self.calls.append(f"browser:{as_user}")
        flow = FakeBrowserSignIn(as_user)
        self.browser_flows.append(flow)
        if as_user is not None:
            flow.complete(self._add_account(as_user.split("@")[0]))
            self._set_current(as_user)
        return flow

    def demo_users(self) -> list[str]:
        return [f"{u}@contoso.example" for u in USERS]

    def sign_in_as(self, username: str, *, timeout: float = 60.0) -> AccountInfo:
        self.calls.append(f"sign_in_as:{username}")
        account = self._add_account(username.split("@")[0])
        for flow in self.flows:
            flow.complete(account)
        self._set_current(account.username)
        return account

    # ---- conversation
    def submit(self, text: str) -> Future[TurnOutcome]:
        """Runs the scripted turn on the caller's loop; cancelling the future cancels the turn."""
        outcome: Future[TurnOutcome] = Future()
        task = asyncio.get_running_loop().create_task(self._turn(text))

        def settle(done: asyncio.Task[TurnOutcome]) -> None:
            if not outcome.set_running_or_notify_cancel():
                return
            if done.cancelled():
                outcome.set_result(TurnOutcome("", None, error="cancelled", cancelled=True))
            elif (error := done.exception()) is not None:
                outcome.set_exception(error)
            else:
                outcome.set_result(done.result())

        task.add_done_callback(settle)
        outcome.add_done_callback(lambda mine: task.cancel() if mine.cancelled() else None)
        return outcome

    async def _turn(self, text: str) -> TurnOutcome:
        """A scripted turn: documents when asked for, a handoff when asked to simulate, otherwise an echo."""
        user = self._current
        assert user is not None
        short = user.split("@")[0]
        ts = self.clock.time()
        publish = self.bus.publish
        self._history[user].append(ChatEntry(Role.USER, text))
        publish(TurnStarted(account=user, agent=self._active, text=text, ts=ts, turn_id="t1"))
        if self.hold is not None:
            await self.hold.wait()
        if "simulat" in text.lower():
            publish(
                HandoffOccurred(
                    account=user, agent=self._active, from_agent=self._active, to_agent="simulator", ts=ts
                )
            )
            self._active = "simulator"
            self._chain = [self.main_agent or "conversation", "simulator"]
            answer = "To simulate a loan I need your **name**, **address** and **income**."
        elif "document" in text.lower():
            answer = self._documents(short, user, ts)
        else:
            answer = self.answers.get(text, f"You said: {text}")
        for i in range(0, len(answer), 12):
            if self._stop.is_set():
                self._stop.clear()
                publish(
                    TurnEnded(account=user, agent=self._active, output="", error="stopped by the user", ts=ts)
                )
                return TurnOutcome("", self._active, error="stopped by the user", cancelled=True)
            publish(TextDelta(account=user, agent=self._active, delta=answer[i : i + 12], ts=ts))
            await asyncio.sleep(0)
        self._history[user].append(ChatEntry(Role.ASSISTANT, answer, self._active))
        publish(
            TurnEnded(
                account=user,
                agent=self._active,
                output=answer,
                last_agent=self._active,
                ts=ts,
                duration_ms=42.0,
            )
        )
        return TurnOutcome(answer, self._active)

    def _documents(self, short: str, user: str, ts: float) -> str:
        publish = self.bus.publish
        publish(
            ToolStarted(
                account=user,
                agent=self._active,
                tool="get_documents",
                call_id="c1",
                arguments='{"query": "*"}',
                tool_type="mcp",
                ts=ts,
            )
        )
        publish(
            ServerStep(
                account=user,
                agent=self._active,
                tool="get_documents",
                call_id="c1",
                step="validate",
                duration_ms=1.2,
                detail={"aud": API},
                ts=ts,
            )
        )
        publish(
            ServerStep(
                account=user,
                agent=self._active,
                tool="get_documents",
                call_id="c1",
                step="obo_exchange",
                duration_ms=14.0,
                detail={"aud": "https://search.azure.com"},
                ts=ts,
            )
        )
        results = self._results(short, user)
        self._search[user] = results
        publish(results)
        publish(
            ToolEnded(
                account=user,
                agent=self._active,
                tool="get_documents",
                call_id="c1",
                result='{"documents": 3}',
                duration_ms=31.0,
                tool_type="mcp",
                ts=ts,
            )
        )
        names = ", ".join(d["name"] for d in results.documents)
        return f"You can see **{len(results.documents)} documents**: {names}."

    def _results(self, short: str, user: str) -> SearchResults:
        name, oid, groups = USERS[short]
        documents = [
            {"name": n, "oid": o, "group": g, "@search.score": s} for n, o, g, s in DOCS.get(short, [])
        ]
        return SearchResults(
            account=user,
            agent=self._active,
            call_id="c1",
            query="*",
            ran_as={
                "name": name,
                "oid": oid,
                "groups": groups,
                "group_names": {groups[0]: "Finance" if short == "alice" else "Engineering"},
            },
            documents=documents,
            obo_claims=self.obo_claims_for(short),
            cache_hit=False,
            ts=self.clock.time(),
        )

    def stop_turn(self) -> bool:
        self.calls.append("stop_turn")
        self._stop.set()
        return True

    def reset_conversation(self) -> None:
        self.calls.append("reset")
        if self.reset_refusal is not None:
            raise self.reset_refusal
        if self._current:
            self._save_current()
            self._history[self._current] = []
            self._search.pop(self._current, None)
            self._session_id[self._current] = f"s{len(self.saved.get(self._current, {})) + 1}"

    def history(self) -> list[ChatEntry]:
        return list(self._history.get(self._current or "", []))

    def events(self) -> list[Event]:
        return [e for e in self._events if e.account == self._current and not isinstance(e, AccountChanged)]

    def subscribe_current(self, callback: Callable[[Event], None]) -> Callable[[], None]:
        def deliver(event: Event) -> None:
            if event.account is None or isinstance(event, AccountChanged) or event.account == self._current:
                callback(event)

        return self.bus.subscribe(deliver)

    # ---- saved conversations and export
    def _save_current(self) -> None:
        user = self._current
        assert user is not None
        sid = self._session_id.setdefault(user, "s1")
        self.saved.setdefault(user, {})[sid] = list(self._history.get(user, []))

    def save_session(self, session_id: str, entries: list[ChatEntry]) -> None:
        """A conversation saved earlier (e.g. by a console that was killed mid-answer)."""
        assert self._current is not None
        self.saved.setdefault(self._current, {})[session_id] = list(entries)

    def sessions(self) -> list[SessionSummary]:
        if self._current is None:
            return []
        self._save_current()
        found = []
        for n, (sid, entries) in enumerate(self.saved.get(self._current, {}).items()):
            title = next((e.text for e in entries if e.role == Role.USER), "")
            found.append(
                SessionSummary(
                    id=sid,
                    title=title,
                    messages=len(entries),
                    updated=T0 - 3600 + 60 * n,
                    started=T0 - 3600,
                    main_agent="conversation",
                    interrupted=any(e.interrupted for e in entries),
                )
            )
        return sorted(found, key=lambda s: s.id == self.current_session_id(), reverse=True)

    def current_session_id(self) -> str | None:
        return self._session_id.setdefault(self._current, "s1") if self._current else None

    def resume_session(self, session_id: str) -> SessionSummary:
        self.calls.append(f"resume:{session_id}")
        summary = next((s for s in self.sessions() if s.id == session_id), None)
        if summary is None:
            raise ValueError(f"There is no saved conversation {session_id!r}.")
        assert self._current is not None
        self._history[self._current] = list(self.saved[self._current][session_id])
        self._session_id[self._current] = session_id
        return summary

    def export(self, path_dir: str | Path | None = None) -> tuple[Path, Path]:
        """Writes the transcript (the real format is tested against the real Workspace in test_flow.py)."""
        from mcp_server.atomic import write_private
        from mcp_server.paths import data_dir

        target = Path(path_dir) if path_dir is not None else data_dir() / "exports"
        target.mkdir(parents=True, exist_ok=True)
        sid = self.current_session_id()
        markdown, trace = target / f"session-{sid}.md", target / f"session-{sid}.trace.jsonl"
        write_private(markdown, "\n".join(f"{e.role}: {e.text}" for e in self.history()) + "\n")
        write_private(trace, "")
        self.exported_to.append(target)
        return markdown, trace

    # ---- agents and configs
    def back_to_main(self) -> None:
        self.calls.append("back_to_main")
        self._active = self.main_agent or "conversation"
        self._chain = [self._active]

    def set_main_agent(self, key: str) -> None:
        self.calls.append(f"main:{key}")
        self.main_agent = key
        self._active = key
        self._chain = [key]

    def active_agent(self) -> AgentInfo | None:
        return AGENTS.get(self._active)

    def handoff_chain(self) -> list[str]:
        return list(self._chain)

    def configs(self) -> list[ConfigInfo]:
        return list(self.config_list)

    # ---- panes
    def user_claims(self, *, refresh: bool = False) -> Claims | None:
        if self._current is None:
            return None
        short = self._current.split("@")[0]
        name, oid, groups = USERS[short]
        return {
            "aud": API,
            "iss": f"https://127.0.0.1:8443/{TENANT}/v2.0",
            "iat": int(T0) - 600,
            "nbf": int(T0) - 600,
            "exp": int(T0) + 3000,
            "name": name,
            "oid": oid,
            "preferred_username": self._current,
            "scp": "execute",
            "tid": TENANT,
            "ver": "2.0",
            "groups": groups,
            "azp": "0c0c0c0c-1111-4222-8333-444444444444",
        }

    def obo_claims_for(self, short: str) -> Claims:
        name, oid, groups = USERS[short]
        return {
            "aud": "https://search.azure.com",
            "iss": f"https://127.0.0.1:8443/{TENANT}/v2.0",
            "iat": int(T0) - 60,
            "nbf": int(T0) - 60,
            "exp": int(T0) + 3540,
            "name": name,
            "oid": oid,
            "scp": "user_impersonation",
            "tid": TENANT,
            "ver": "2.0",
            "azp": API,
            "groups": groups,
        }

    def obo_claims(self) -> Claims | None:
        results = self._search.get(self._current or "")
        return dict(results.obo_claims) if results and results.obo_claims else None

    def last_search(self) -> SearchResults | None:
        return self._search.get(self._current or "")

    def server_status(self) -> LinkStatus:
        return self.status

    def subscribe_server_log(self, callback: Callable[[str], None]) -> Callable[[], None]:
        for line in self.log_lines:
            callback(line)
        self._log_followers.append(callback)
        return lambda: self._log_followers.remove(callback)

    def print_log(self, line: str) -> None:
        """The server prints a line."""
        self.log_lines.append(line)
        for follower in list(self._log_followers):
            follower(line)
