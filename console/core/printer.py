"""The headless event printer: events from the bus as human lines, or as JSON lines (one object per event).

Human mode streams the answer's text as it arrives and prints every other step on its own line, labelled with
its agent. JSON mode prints ``event.to_dict()`` per event (``kind`` names the type), text deltas included.
"""

from __future__ import annotations

import json
import sys
from typing import IO

from console.core.events import (
    AgentEnded,
    AgentStarted,
    Event,
    HandoffOccurred,
    ModelCalled,
    Notice,
    SearchResults,
    ServerStep,
    TextDelta,
    ToolEnded,
    ToolStarted,
    TurnEnded,
    TurnStarted,
)
from console.core.plural import plural


def _ms(value: float | None) -> str:
    return f"{value:.0f} ms" if value is not None else "—"


def _clip(text: str, width: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def describe(event: Event) -> str | None:
    """One human line for an event (None for text deltas, which are streamed, not listed)."""
    who = f"[{event.agent}] " if event.agent else ""
    match event:
        case TurnStarted():
            return f"{who}turn started" + (f" as {event.account}" if event.account else "")
        case AgentStarted():
            return f"{who}agent started" + (f" (called as a tool by {event.parent})" if event.parent else "")
        case AgentEnded():
            return f"{who}agent finished"
        case ModelCalled():
            return f"{who}model {event.model} ({event.provider}) answered in {_ms(event.duration_ms)}, {event.input_tokens}→{event.output_tokens} tokens"
        case HandoffOccurred():
            return f"{who}handoff {event.from_agent} → {event.to_agent}"
        case ToolStarted():
            return f"{who}tool {event.tool} ({event.tool_type}) {_clip(event.arguments, 120)}"
        case ToolEnded():
            state = f"failed: {_clip(event.error, 120)}" if event.error else _clip(event.result, 120)
            return f"{who}tool {event.tool} done in {_ms(event.duration_ms)}: {state}"
        case ServerStep():
            return f"{who}  server step {event.step}: {event.status} ({_ms(event.duration_ms)})"
        case SearchResults():
            ran_as = event.ran_as.get("name") or event.ran_as.get("preferred_username") or event.ran_as.get("oid") or "?"
            if event.error:
                return f"{who}  search failed as {ran_as}: {event.error}" + (f" ({event.aadsts})" if event.aadsts else "")
            names = ", ".join(str(d.get("name", "?")) for d in event.documents)
            cache = " (OBO token from cache)" if event.cache_hit else ""
            return f"{who}  search as {ran_as}: {plural(len(event.documents), 'document')}{cache}: {names}"
        case Notice():
            return f"{event.level}: {event.message}"
        case TurnEnded():
            if event.error:
                return f"{who}turn failed after {_ms(event.duration_ms)}: {event.error}"
            return f"{who}turn finished in {_ms(event.duration_ms)}"
        case TextDelta():
            return None
    return f"{who}{event.kind}"


class EventPrinter:
    """Subscribe ``printer.handle`` to a bus. ``json_lines``: every event as JSON on ``out``. Otherwise steps go
    to ``err`` (stderr) as lines and the answer's text to ``out`` as it streams."""

    def __init__(self, *, json_lines: bool = False, out: IO[str] | None = None, err: IO[str] | None = None, verbose: bool = True) -> None:
        self.json_lines = json_lines
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self.verbose = verbose
        self._streaming_agent: str | None = None
        self._root_agents: set[str] = set()
        self._nested: set[str] = set()
        self._tool_failed: dict[str, bool] = {}  # tool -> whether its last call this turn failed

    def handle(self, event: Event) -> None:
        if self.json_lines:
            self.out.write(json.dumps(event.to_dict(), default=str, ensure_ascii=False) + "\n")
            self.out.flush()
            return
        if isinstance(event, AgentStarted) and event.parent:
            self._nested.add(event.agent or "")
        if isinstance(event, TextDelta):
            if event.agent in self._nested:
                return  # an agent-as-tool's own words reach the user through the calling agent
            if self._streaming_agent != event.agent:
                self._end_stream()
                self.out.write(f"{event.agent}: ")
                self._streaming_agent = event.agent
            self.out.write(event.delta)
            self.out.flush()
            return
        line = self._line(event)
        if line is None:
            return
        if isinstance(event, TurnEnded) or self.verbose:
            self._end_stream()  # a step line on stderr must not glue onto the streamed answer in a terminal
        if self.verbose or _worth_telling(event):
            self.err.write(line + "\n")
            self.err.flush()

    def _line(self, event: Event) -> str | None:
        """``describe``, except that a turn whose tool failed last does not read as a plain success."""
        if isinstance(event, TurnStarted):
            self._tool_failed.clear()
        elif isinstance(event, ToolEnded):
            self._tool_failed[event.tool] = event.error is not None
        line = describe(event)
        failed = [tool for tool, bad in self._tool_failed.items() if bad]
        if isinstance(event, TurnEnded) and not event.error and failed and line is not None:
            line += f", but without the result of {', '.join(failed)} (it failed)"
        return line

    def _end_stream(self) -> None:
        if self._streaming_agent is not None:
            self.out.write("\n")
            self.out.flush()
            self._streaming_agent = None


def _worth_telling(event: Event) -> bool:
    """What quiet mode still prints besides the answer: errors and warnings."""
    if isinstance(event, TurnEnded):
        return event.error is not None
    return isinstance(event, Notice) and event.level != "info"
