"""Export a stored conversation: Markdown (conversation, claims, events) and the trace as JSON lines.

The output is deterministic — times in UTC from the stored timestamps, claims in the token's order, JSON with
sorted keys — so the same session always exports to the same bytes and tests can check it line by line. Claims
are shown, tokens never: everything passes through :func:`mcp_server.redact.redact_value` first.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from console.core.claims import claim_meaning, display_value
from console.core.describe import describe
from console.core.events import event_from_dict
from console.core.sessions import LoadedSession, SessionStore
from mcp_server.atomic import write_private
from mcp_server.paths import data_dir
from mcp_server.redact import redact, redact_value

ROLE_LABELS = {"user": "You", "notice": "Notice"}
SUMMARY_WIDTH = 240  # an event's particulars in the table; the trace (JSON lines) keeps them whole


@dataclass(frozen=True)
class ExportPaths:
    markdown: Path
    trace: Path


def utc(ts: float, *, millis: bool = False) -> str:
    moment = datetime.fromtimestamp(ts, UTC)
    text = moment.strftime("%Y-%m-%d %H:%M:%S")
    if millis:
        text += f".{moment.microsecond // 1000:03d}"
    return text + " UTC"


def _cell(value: Any) -> str:
    text = (
        value
        if isinstance(value, str)
        else json.dumps(value, sort_keys=True, default=str, ensure_ascii=False)
    )
    return " ".join(text.split()).replace("|", "\\|") or " "


def event_summary(event: dict[str, Any]) -> tuple[str, str]:
    """(agent, one line) for a stored event, in the shared wording (``console.core.describe``)."""
    typed = event_from_dict(event)
    if typed is None:  # a kind this version does not know (a newer trace): named, nothing more
        return str(event.get("agent") or ""), str(event.get("kind", "event"))
    description = describe(typed)
    return description.agent or "", description.line(SUMMARY_WIDTH)


def _claims_table(title: str, claims: dict[str, Any] | None) -> list[str]:
    lines = [f"### {title}", ""]
    if not claims:
        return [*lines, "(none)", ""]
    lines += ["| Claim | Value | Meaning |", "|---|---|---|"]
    for name, value in redact_value(dict(claims)).items():
        lines.append(
            f"| {_cell(name)} | {_cell(display_value(name, value))} | {_cell(claim_meaning(name))} |"
        )
    return [*lines, ""]


def conversation_markdown(
    loaded: LoadedSession,
    events: list[dict[str, Any]],
    *,
    account: str,
    user_claims: dict[str, Any] | None = None,
    obo_claims: dict[str, Any] | None = None,
) -> str:
    """The whole session as Markdown: header, messages, claims (masked), events."""
    summary = loaded.summary
    lines = [
        f"# OBO Console conversation: {_cell(summary.title or 'untitled')}",
        "",
        f"- Account: {account}",
        f"- Session: {summary.id}",
        f"- Started: {utc(summary.started)}",
        f"- Last activity: {utc(summary.updated)}",
        f"- Main agent: {summary.main_agent or '(default)'}",
        f"- Messages: {len(loaded.messages)}",
        "",
        "## Conversation",
        "",
    ]
    for number, message in enumerate(loaded.messages, start=1):
        who = ROLE_LABELS.get(message.role) or message.agent or "assistant"
        marks = []
        if not message.complete:
            marks.append("interrupted: the answer stopped here")
        if message.error:
            marks.append("error")
        suffix = f" ({'; '.join(marks)})" if marks else ""
        lines += [f"### {number}. {who} · {utc(message.ts)}{suffix}", ""]
        lines += redact(message.text).splitlines() or [""]
        lines.append("")
    lines += ["## Claims", "", "Decoded claims only; tokens are never exported.", ""]
    lines += _claims_table("User token", user_claims)
    lines += _claims_table("OBO token (for Azure AI Search)", obo_claims)
    lines += ["## Events", ""]
    if events:
        lines += ["| Time | Agent | Event |", "|---|---|---|"]
        for event in events:
            clean = redact_value(event)
            agent, line = event_summary(clean)
            lines.append(
                f"| {utc(float(clean.get('ts') or 0), millis=True)} | {_cell(agent)} | {_cell(line)} |"
            )
    else:
        lines.append("(none)")
    lines.append("")
    return "\n".join(lines)


def trace_jsonl(events: list[dict[str, Any]]) -> str:
    """The session's events as JSON lines (sorted keys, compact), masked; '' when there are none."""
    return "".join(
        json.dumps(
            redact_value(event), sort_keys=True, separators=(",", ":"), default=str, ensure_ascii=False
        )
        + "\n"
        for event in events
    )


def exports_dir() -> Path:
    path = data_dir() / "exports"
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def export_session(
    store: SessionStore,
    session_id: str,
    directory: Path | None = None,
    *,
    user_claims: dict[str, Any] | None = None,
    obo_claims: dict[str, Any] | None = None,
) -> ExportPaths:
    """Write ``<session>.md`` and ``<session>.trace.jsonl`` (0600) and return their paths."""
    loaded = store.load(session_id)
    events = store.events(session_id)
    target = directory or exports_dir()
    stem = f"session-{datetime.fromtimestamp(loaded.summary.started, UTC):%Y%m%d-%H%M%S}-{session_id[:8]}"
    paths = ExportPaths(target / f"{stem}.md", target / f"{stem}.trace.jsonl")
    write_private(
        paths.markdown,
        conversation_markdown(
            loaded, events, account=store.username, user_claims=user_claims, obo_claims=obo_claims
        ),
    )
    write_private(paths.trace, trace_jsonl(events))
    return paths
