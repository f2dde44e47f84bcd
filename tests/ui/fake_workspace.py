"""A small in-memory workspace with FIXED data, for snapshot tests and UI-only Pilot tests.

It implements console.ui.protocols.WorkspaceLike and publishes real console.core.events on a real EventBus; the
end-to-end tests (test_flow.py) use the real console.core.workspace.Workspace instead.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from console.core.clock import FixedClock
from console.core.events import (
    AccountChanged,
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

T0 = FixedClock.DEFAULT_START.timestamp()
TENANT = "7d3c1f1e-2b7a-4c55-9a51-3f0c6f1d2a10"
API = "5b1e6f0a-7c4d-4e8b-9f21-0d6a3c2b1e90"
USERS = {
    "alice": ("Alice Adams", "1a1a1a1a-0000-4000-8000-000000000001", ["f1f1f1f1-0000-4000-8000-00000000000f"]),
    "bob": ("Bob Baker", "2b2b2b2b-0000-4000-8000-000000000002", ["e2e2e2e2-0000-4000-8000-00000000000e"]),
    "carol": ("Carol Clark", "3c3c3c3c-0000-4000-8000-000000000003", ["d3d3d3d3-0000-4000-8000-00000000000d"]),
}
DOCS = {
    "alice": [("Quarterly finance report", ["all"], ["f1f1f1f1-0000-4000-8000-00000000000f"], 2.731),
              ("Alice's onboarding notes", ["1a1a1a1a-0000-4000-8000-000000000001"], [], 2.104),
              ("Company holiday calendar", [], ["all"], 1.502)],
    "bob": [("Engineering roadmap", [], ["e2e2e2e2-0000-4000-8000-00000000000e"], 2.402),
            ("Company holiday calendar", [], ["all"], 1.502)],
}


@dataclass
class FakeAccount:
    username: str
    name: str


@dataclass
class FakeFlow:
    user_code: str = "FKXW-QTRP"
    verification_uri: str = "https://127.0.0.1:8443/7d3c1f1e/oauth2/deviceauth"
    expires_at: float = T0 + 900
    done: asyncio.Event = field(default_factory=asyncio.Event)
    account: FakeAccount | None = None
    cancelled: bool = False

    async def wait(self) -> FakeAccount:
        await self.done.wait()
        if self.account is None:
            raise RuntimeError("Sign-in cancelled.")
        return self.account

    def cancel(self) -> None:
        self.cancelled = True
        self.done.set()


@dataclass
class FakeAgent:
    key: str
    name: str
    model: str = "offline-demo"
    provider: str = "offline"
    tools: list[str] = field(default_factory=list)
    agents_as_tools: list[str] = field(default_factory=list)
    handoffs: list[str] = field(default_factory=list)


AGENTS = {
    "conversation": FakeAgent("conversation", "Conversation agent", tools=["get_time", "get_date"],
                              agents_as_tools=["weather", "news"], handoffs=["simulator"]),
    "documents": FakeAgent("documents", "Documents agent", tools=["get_documents"]),
    "simulator": FakeAgent("simulator", "Simulator agent", tools=["simulate_loan"], handoffs=["conversation"]),
}


@dataclass
class FakeConfig:
    key: str
    source: str
    valid: bool = True
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    serving: bool = True


@dataclass
class FakeStatus:
    state: str = "ready"
    url: str | None = "http://127.0.0.1:8000/mcp"
    detail: str = ""
    launched: bool = True


@dataclass
class FakeEntry:
    role: str
    text: str
    agent: str | None = None
    interrupted: bool = False


@dataclass(frozen=True)
class FakeSummary:
    """Shaped like console.core.sessions.SessionSummary."""

    id: str
    title: str
    messages: int
    updated: float
    main_agent: str | None = "conversation"
    interrupted: bool = False


class FakeWorkspace:
    mode = "local"

    def __init__(self, *, signed_in: str | None = "alice", clock: FixedClock | None = None) -> None:
        self.bus = EventBus()
        self.clock = clock or FixedClock()
        self._accounts: dict[str, FakeAccount] = {}
        self._current: str | None = None
        self._history: dict[str, list[FakeEntry]] = {}
        self._search: dict[str, SearchResults] = {}
        self.main_agent: str | None = "conversation"
        self._active = "conversation"
        self._chain = ["conversation"]
        self.flows: list[FakeFlow] = []
        self.calls: list[str] = []
        self.status = FakeStatus()
        self.log_lines = ["INFO  local identity platform on https://127.0.0.1:8443",
                          "INFO  local search service on https://127.0.0.1:8444",
                          "INFO  MCP server on http://127.0.0.1:8000/mcp"]
        self.config_list = [
            FakeConfig("conversation", "configs/conversation.json"),
            FakeConfig("documents", "configs/documents.json"),
            FakeConfig("news", "configs/news.json", warnings=["$.tools[0]: web_search needs a hosted model"]),
            FakeConfig("simulator", "configs/simulator.json", valid=False,
                       errors=["$.model: 42 is not of type 'string'"], serving=True),
        ]
        self._stop = asyncio.Event()
        # Saved conversations per account: session id → its messages (the current one is self._history's).
        self.saved: dict[str, dict[str, list[FakeEntry]]] = {}
        self._session_id: dict[str, str] = {}
        self.exported_to: list[Path] = []
        self._events: list = []
        self.bus.subscribe(self._events.append)
        self.answers: dict[str, str] = {}  # scripted answers by question (otherwise the echo below)
        self.hold: asyncio.Event | None = None  # when given, a turn waits for it before answering
        if signed_in:
            self._add_account(signed_in)
            self._current = self._accounts[signed_in].username

    # ---- accounts
    def _add_account(self, short: str) -> FakeAccount:
        name = USERS[short][0]
        account = FakeAccount(f"{short}@contoso.example", name)
        self._accounts[short] = account
        self._history.setdefault(account.username, [])
        return account

    def accounts(self) -> list[FakeAccount]:
        return list(self._accounts.values())

    @property
    def current_account(self) -> FakeAccount | None:
        return next((a for a in self._accounts.values() if a.username == self._current), None)

    def _set_current(self, username: str | None) -> None:
        previous, self._current = self._current, username
        self.bus.publish(AccountChanged(account=username, previous=previous, ts=self.clock.time()))

    def switch_account(self, username: str) -> None:
        self.calls.append(f"switch:{username}")
        self._set_current(username)

    def sign_out(self) -> None:
        self.calls.append("sign_out")
        short = (self._current or "").split("@")[0]
        self._accounts.pop(short, None)
        self._set_current(next(iter(a.username for a in self._accounts.values()), None))

    async def begin_device_flow(self) -> FakeFlow:
        flow = FakeFlow()
        self.flows.append(flow)
        return flow

    def demo_users(self) -> list[str]:
        return [f"{u}@contoso.example" for u in USERS]

    async def sign_in_as(self, username: str) -> FakeAccount:
        self.calls.append(f"sign_in_as:{username}")
        account = self._add_account(username.split("@")[0])
        for flow in self.flows:
            flow.account = account
            flow.done.set()
        self._set_current(account.username)
        return account

    # ---- conversation
    async def send(self, text: str) -> None:
        """A scripted turn: documents when asked for, a handoff when asked to simulate, otherwise an echo."""
        user = self._current
        assert user is not None
        short = user.split("@")[0]
        ts = self.clock.time()
        publish = self.bus.publish
        self._history[user].append(FakeEntry("user", text))
        publish(TurnStarted(account=user, agent=self._active, text=text, ts=ts, turn_id="t1"))
        if self.hold is not None:
            await self.hold.wait()
        if "simulat" in text.lower():
            publish(HandoffOccurred(account=user, agent=self._active, from_agent=self._active, to_agent="simulator",
                                    ts=ts))
            self._active = "simulator"
            self._chain = [self.main_agent or "conversation", "simulator"]
            answer = "To simulate a loan I need your **name**, **address** and **income**."
        elif "document" in text.lower():
            publish(ToolStarted(account=user, agent=self._active, tool="get_documents", call_id="c1",
                                arguments='{"query": "*"}', tool_type="mcp", ts=ts))
            publish(ServerStep(account=user, agent=self._active, tool="get_documents", call_id="c1", step="validate",
                               duration_ms=1.2, detail={"aud": API}, ts=ts))
            publish(ServerStep(account=user, agent=self._active, tool="get_documents", call_id="c1",
                               step="obo_exchange", duration_ms=14.0, detail={"aud": "https://search.azure.com"},
                               ts=ts))
            results = self._results(short, user)
            self._search[user] = results
            publish(results)
            publish(ToolEnded(account=user, agent=self._active, tool="get_documents", call_id="c1",
                              result='{"documents": 3}', duration_ms=31.0, tool_type="mcp", ts=ts))
            names = ", ".join(d["name"] for d in results.documents)
            answer = f"You can see **{len(results.documents)} documents**: {names}."
        else:
            answer = self.answers.get(text, f"You said: {text}")
        for i in range(0, len(answer), 12):
            if self._stop.is_set():
                self._stop.clear()
                publish(TurnEnded(account=user, agent=self._active, output="", error="stopped by the user", ts=ts))
                return
            publish(TextDelta(account=user, agent=self._active, delta=answer[i:i + 12], ts=ts))
            await asyncio.sleep(0)
        self._history[user].append(FakeEntry("assistant", answer, self._active))
        publish(TurnEnded(account=user, agent=self._active, output=answer, last_agent=self._active, ts=ts,
                          duration_ms=42.0))

    def _results(self, short: str, user: str) -> SearchResults:
        name, oid, groups = USERS[short]
        documents = [{"name": n, "oid": o, "group": g, "@search.score": s} for n, o, g, s in DOCS.get(short, [])]
        return SearchResults(account=user, agent=self._active, call_id="c1", query="*",
                             ran_as={"name": name, "oid": oid, "groups": groups,
                                     "group_names": {groups[0]: "Finance" if short == "alice" else "Engineering"}},
                             documents=documents, obo_claims=self.obo_claims_for(short), cache_hit=False,
                             ts=self.clock.time())

    def stop_turn(self) -> None:
        self.calls.append("stop_turn")
        self._stop.set()

    def reset_conversation(self) -> None:
        self.calls.append("reset")
        if self._current:
            self._save_current()
            self._history[self._current] = []
            self._search.pop(self._current, None)
            self._session_id[self._current] = f"s{len(self.saved.get(self._current, {})) + 1}"

    # ---- saved conversations and export
    def _save_current(self) -> None:
        user = self._current
        assert user is not None
        sid = self._session_id.setdefault(user, "s1")
        self.saved.setdefault(user, {})[sid] = list(self._history.get(user, []))

    def save_session(self, session_id: str, entries: list[FakeEntry]) -> None:
        """A conversation saved earlier (e.g. by a console that was killed mid-answer)."""
        assert self._current is not None
        self.saved.setdefault(self._current, {})[session_id] = list(entries)

    def sessions(self) -> list[FakeSummary]:
        if self._current is None:
            return []
        self._save_current()
        found = []
        for n, (sid, entries) in enumerate(self.saved.get(self._current, {}).items()):
            title = next((e.text for e in entries if e.role == "user"), "")
            found.append(FakeSummary(sid, title, len(entries), T0 - 3600 + 60 * n,
                                     interrupted=any(e.interrupted for e in entries)))
        return sorted(found, key=lambda s: s.id == self.current_session_id(), reverse=True)

    def current_session_id(self) -> str | None:
        return self._session_id.setdefault(self._current, "s1") if self._current else None

    def resume_session(self, session_id: str) -> FakeSummary:
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

    def events(self) -> list:
        return [e for e in self._events if e.account == self._current and not isinstance(e, AccountChanged)]

    def history(self) -> list[FakeEntry]:
        return list(self._history.get(self._current or "", []))

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

    def active_agent(self) -> FakeAgent | None:
        return AGENTS.get(self._active)

    def handoff_chain(self) -> list[str]:
        return list(self._chain)

    def configs(self) -> list[FakeConfig]:
        return list(self.config_list)

    # ---- panes
    def user_claims(self) -> dict[str, Any] | None:
        if self._current is None:
            return None
        short = self._current.split("@")[0]
        name, oid, groups = USERS[short]
        return {"aud": API, "iss": f"https://127.0.0.1:8443/{TENANT}/v2.0", "iat": int(T0) - 600,
                "nbf": int(T0) - 600, "exp": int(T0) + 3000, "name": name, "oid": oid,
                "preferred_username": self._current, "scp": "execute", "tid": TENANT, "ver": "2.0",
                "groups": groups, "azp": "0c0c0c0c-1111-4222-8333-444444444444"}

    def obo_claims_for(self, short: str) -> dict[str, Any]:
        name, oid, groups = USERS[short]
        return {"aud": "https://search.azure.com", "iss": f"https://127.0.0.1:8443/{TENANT}/v2.0",
                "iat": int(T0) - 60, "nbf": int(T0) - 60, "exp": int(T0) + 3540, "name": name, "oid": oid,
                "scp": "user_impersonation", "tid": TENANT, "ver": "2.0", "azp": API, "groups": groups}

    def obo_claims(self) -> dict[str, Any] | None:
        results = self._search.get(self._current or "")
        return results.obo_claims if results else None

    def last_search(self) -> SearchResults | None:
        return self._search.get(self._current or "")

    def server_status(self) -> FakeStatus:
        return self.status

    def server_log(self) -> list[str]:
        return list(self.log_lines)

    def start(self) -> None:
        self.calls.append("start")

    def close(self) -> None:
        self.calls.append("close")
