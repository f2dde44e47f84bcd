"""One description per event type: the words the events pane, the headless printer and the export all use.

``describe(event)`` gives an :class:`EventDescription`: a label (``what``), a state word (``status``), the
particulars (``summary``), a duration, who it is about, and the full texts a view may expand (``details``). Views
choose the presentation (columns, colour, clipping, indentation); the wording is this module's alone, and
:meth:`EventDescription.line` is the one way to say it on a single line.

Everything a description holds passes through :func:`mcp_server.redact.redact` (events are masked where they
are made; this keeps every view masked even if one is not).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any

from console.core.events import (
    AccountChanged,
    AgentEnded,
    AgentStarted,
    Event,
    HandoffOccurred,
    ModelCalled,
    Notice,
    SearchResults,
    ServerStatusChanged,
    ServerStep,
    SignInStep,
    StepUp,
    StepUpStatus,
    TextDelta,
    ToolEnded,
    ToolStarted,
    TurnEnded,
    TurnStarted,
)
from console.core.plural import plural
from mcp_server import aadsts
from mcp_server.redact import redact

STARTED, DONE, FAILED = "started", "done", "failed"


@dataclass(frozen=True)
class EventDescription:
    """What an event says, in the console's words. ``status`` is a state word (``started``, ``done``,
    ``failed``, a server step's or link's own state, a notice's level) views may also colour by."""

    what: str
    status: str = ""
    summary: str = ""
    duration_ms: float | None = None
    agent: str | None = None  # the agent it happened in, or where it came from (a notice's source, "console")
    details: tuple[tuple[str, str], ...] = ()  # (name, full text) a view may show on demand

    def line(self, width: int | None = None) -> str:
        """``what status in N ms: summary`` on one line (the summary flattened, clipped to ``width``)."""
        head = " ".join(part for part in (self.what, self.status) if part)
        if self.duration_ms is not None:
            head += f" in {ms(self.duration_ms)}"
        summary = flat(self.summary, width)
        return f"{head}: {summary}" if summary else head


def ms(value: float) -> str:
    """``1.8 ms``, ``52 ms``, ``1100 ms``: one decimal where it says something."""
    return f"{value:.1f}".removesuffix(".0") + " ms"


def flat(text: str, width: int | None = None) -> str:
    """``text`` on one line, clipped to ``width`` characters with an ellipsis."""
    text = " ".join(text.split())
    return text if width is None or len(text) <= width else text[: width - 1] + "…"


def pretty(text: str) -> str:
    """JSON text indented for reading; any other text as it is."""
    try:
        return json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    except (ValueError, TypeError):
        return text


def _details(*pairs: tuple[str, Any]) -> tuple[tuple[str, str], ...]:
    return tuple((name, redact(str(value))) for name, value in pairs if value not in (None, ""))


def aadsts_of(event: Event) -> aadsts.Aadsts | None:
    """The AADSTS code an event carries (its own field, a server step's detail, or named in its message) as the
    table's entry (docs/aadsts.md); None when it carries none the table knows."""
    match event:
        case SearchResults():
            candidates: list[Any] = [event.aadsts, event.error]
        case ToolEnded():
            candidates = [event.code, event.error]
        case Notice():
            candidates = [event.code, event.message]
        case ServerStep():
            candidates = [event.detail.get("aadsts"), event.detail.get("error")]
        case _:
            return None
    for value in candidates:
        entry = aadsts.lookup(value) if value else None
        if entry is not None:
            return entry
        named = aadsts.codes_in(value) if isinstance(value, str) else []
        if named:
            return named[0]
    return None


def _explained(event: Event, description: EventDescription) -> EventDescription:
    """The description with the AADSTS table's meaning and fix added to its details."""
    entry = aadsts_of(event)
    if entry is None:
        return description
    extra = ((entry.label, entry.meaning), ("fix", entry.fix))
    return replace(description, details=description.details + extra)


def describe(event: Event) -> EventDescription:
    """The description of ``event`` (any type; an unknown one is named by its kind), with the meaning and fix of
    any AADSTS code it carries."""
    return _explained(event, _describe(event))


def _describe(event: Event) -> EventDescription:
    """The description of ``event`` (any type; an unknown one is named by its kind)."""
    match event:
        case TurnStarted() | TurnEnded() | AgentStarted() | AgentEnded() | HandoffOccurred() | ModelCalled():
            return _run_step(event)
        case ToolStarted() | ToolEnded() | ServerStep() | SearchResults():
            return _tool_step(event)
        case Notice():
            return EventDescription(
                "notice",
                event.level,
                redact(event.message),
                agent=event.agent or event.source,
                details=_details(
                    ("message", event.message),
                    ("code", event.code),
                    ("HTTP status", event.http_status),
                    ("step", event.step),
                ),
            )
        case ServerStatusChanged():
            summary = " ".join(part for part in (event.url or "", event.detail) if part)
            return EventDescription("MCP server", event.state, redact(summary), agent="console")
        case AccountChanged():
            return EventDescription(
                "current account", summary=event.account or "none (signed out)", agent=event.agent
            )
        case StepUp():
            return _step_up(event)
        case TextDelta():
            return EventDescription("text", summary=redact(event.delta), agent=event.agent)
        case SignInStep():
            how = "browser sign-in" if event.method == "browser" else "device-code sign-in"
            summary = " ".join(part for part in (event.account or "", event.detail) if part)
            return EventDescription(
                how, event.state, redact(summary), agent="console", details=_details(("code", event.code))
            )
    return EventDescription(event.kind, agent=event.agent)


def _run_step(event: Event) -> EventDescription:
    """Turns, agents, handoffs and model calls."""
    match event:
        case TurnStarted():
            return EventDescription("turn", STARTED, redact(event.text), agent=event.agent)
        case TurnEnded():
            return EventDescription(
                "turn",
                FAILED if event.error else DONE,
                redact(event.error or ""),
                event.duration_ms,
                event.last_agent or event.agent,
                _details(("error", event.error)),
            )
        case AgentStarted():
            return EventDescription(
                "agent", STARTED, f"called by {event.parent}" if event.parent else "", agent=event.agent
            )
        case AgentEnded():
            return EventDescription(
                "agent", DONE, agent=event.agent, details=_details(("output", event.output))
            )
        case HandoffOccurred():
            return EventDescription(
                "handoff", summary=f"{event.from_agent} → {event.to_agent}", agent=event.agent
            )
        case ModelCalled():
            tokens = f"{event.input_tokens}→{event.output_tokens} tokens"
            summary = f"{event.provider}, {tokens}" if event.provider else tokens
            return EventDescription(
                f"model {event.model}", "answered", summary, event.duration_ms, event.agent
            )
    return EventDescription(event.kind, agent=event.agent)


def _tool_step(event: Event) -> EventDescription:
    """Tool calls, the MCP server's steps inside them, and what a search returned."""
    match event:
        case ToolStarted():
            return EventDescription(
                f"{event.tool_type} tool {event.tool}",
                STARTED,
                redact(event.arguments),
                agent=event.agent,
                details=_details(("arguments", pretty(event.arguments))),
            )
        case ToolEnded():
            outcome = event.error or event.result
            return EventDescription(
                f"{event.tool_type} tool {event.tool}",
                FAILED if event.error else DONE,
                redact(outcome),
                event.duration_ms,
                event.agent,
                _details(
                    ("result", pretty(outcome)),
                    ("code", event.code),
                    ("HTTP status", event.http_status),
                    ("step", event.step),
                ),
            )
        case ServerStep():
            facts = ", ".join(f"{key}={value}" for key, value in event.detail.items() if value is not None)
            return EventDescription(
                f"server {event.step}",
                event.status,
                redact(facts),
                event.duration_ms,
                event.agent,
                _details(("detail", json.dumps(event.detail, indent=2, default=str))),
            )
        case SearchResults():
            return _search(event)
    return EventDescription(event.kind, agent=event.agent)


def _search(event: SearchResults) -> EventDescription:
    ran_as = event.ran_as
    who = ran_as.get("name") or ran_as.get("preferred_username") or ran_as.get("oid") or "?"
    if event.error:
        return EventDescription(
            "search",
            FAILED,
            redact(event.error),
            agent=event.agent,
            details=_details(
                ("error", event.error), ("code", event.aadsts), ("step", event.step), ("ran as", who)
            ),
        )
    names = ", ".join(str(d.get("name", "?")) for d in event.documents)
    summary = f"{plural(len(event.documents), 'document')} visible to {who}"
    if event.cache_hit:
        summary += ", OBO token from cache"
    if names:
        summary += f": {names}"
    return EventDescription(
        "search",
        DONE,
        redact(summary),
        agent=event.agent,
        details=_details(("query", event.query), ("documents", names)),
    )


def amr_text(amr: list[str], acrs: list[str]) -> str:
    """``amr pwd, mfa; acrs c1`` (how a sign-in was done, as Conditional Access reads it)."""
    text = f"amr {', '.join(amr) or '(none)'}"
    return f"{text}; acrs {', '.join(acrs)}" if acrs else text


_STEP_UP_SUMMARY: dict[StepUpStatus, str] = {
    StepUpStatus.REQUIRED: "Conditional Access policy {policy} requires {required} for {resource}",
    StepUpStatus.SIGNING_IN: "signing in again with the claims challenge ({required})",
    StepUpStatus.DONE: "signed in again with {required}; the turn runs again once",
    StepUpStatus.FAILED: "not satisfied: {required} for {resource}",
}


def _step_up(event: StepUp) -> EventDescription:
    """A claims challenge and the sign-in that answers it."""
    summary = _STEP_UP_SUMMARY.get(event.status, "{required}").format(
        policy=event.policy or "(not named)", required=event.required, resource=event.resource
    )
    if event.status is StepUpStatus.DONE:
        before = amr_text(event.amr_before, event.acrs_before)
        summary += f" ({before} → {amr_text(event.amr_after, event.acrs_after)})"
    if event.how:
        summary += f"; {event.how}"
    return EventDescription(
        "step-up",
        str(event.status),
        redact(summary),
        agent=event.agent,
        details=_details(
            ("code", event.code),
            ("AADSTS", event.aadsts),
            ("policy", event.policy),
            ("resource", event.resource),
            ("claims", pretty(event.claims)),
            ("before", amr_text(event.amr_before, event.acrs_before)),
            ("after", amr_text(event.amr_after, event.acrs_after) if event.amr_after else None),
            ("sign-in page", event.url),
            ("what to do", event.hint),
        ),
    )


def step_up_notice(event: StepUp) -> str | None:
    """The chat's line for a step-up the person must act on: the page to complete, or why it failed."""
    if event.status is StepUpStatus.SIGNING_IN and event.url:
        return redact(f"Step-up ({event.required}): {event.how or 'sign in again'}: {event.url}")
    if event.status is StepUpStatus.FAILED:
        return redact(f"Step-up failed ({event.required}): {event.hint or 'not satisfied'}")
    return None
