"""The headless event printer: events from the bus as human lines, or as JSON lines (one object per event).

Human mode streams the answer's text as it arrives and prints every other step on its own line, labelled with
its agent. JSON mode prints ``event.to_dict()`` per event (``kind`` names the type), text deltas included.
"""

from __future__ import annotations

import json
import sys
from typing import IO

from console.core.describe import aadsts_of, describe
from console.core.events import (
    AgentStarted,
    Event,
    Notice,
    SearchResults,
    ServerStep,
    TextDelta,
    ToolEnded,
    TurnEnded,
    TurnStarted,
)

SUMMARY_WIDTH = 120


def step_line(event: Event) -> str | None:
    """One line for an event in the shared wording (``console.core.describe``), labelled with its agent; server
    steps and search results indented under their tool call. None for text deltas (streamed, not listed)."""
    if isinstance(event, TextDelta):
        return None
    description = describe(event)
    who = f"[{description.agent}] " if description.agent else ""
    indent = "  " if isinstance(event, ServerStep | SearchResults) else ""
    return f"{who}{indent}{description.line(SUMMARY_WIDTH)}"


class EventPrinter:
    """Subscribe ``printer.handle`` to a bus. ``json_lines``: every event as JSON on ``out``. Otherwise steps go
    to ``err`` (stderr) as lines and the answer's text to ``out`` as it streams."""

    def __init__(
        self,
        *,
        json_lines: bool = False,
        out: IO[str] | None = None,
        err: IO[str] | None = None,
        verbose: bool = True,
    ) -> None:
        self.json_lines = json_lines
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self.verbose = verbose
        self._streaming_agent: str | None = None
        self._nested: set[str] = set()
        self._tool_failed: dict[str, bool] = {}  # tool -> whether its last call this turn failed
        self._explained: set[int] = (
            set()
        )  # AADSTS codes already explained this turn (several events carry one)

    def handle(self, event: Event) -> None:
        if self.json_lines:
            document = event.to_dict()
            entry = aadsts_of(event)
            if entry is not None:  # the AADSTS table's words (docs/aadsts.md) next to the code
                document["aadsts_explained"] = {
                    "code": entry.label,
                    "meaning": entry.meaning,
                    "fix": entry.fix,
                }
            self.out.write(json.dumps(document, default=str, ensure_ascii=False) + "\n")
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
        entry = aadsts_of(event)
        if entry is not None and entry.code not in self._explained:
            # Said once per turn, verbose or not: the code alone tells a person nothing.
            self._explained.add(entry.code)
            self.err.write(f"  {entry.label}: {entry.meaning}.\n  Fix: {entry.fix}\n")
        self.err.flush()

    def _line(self, event: Event) -> str | None:
        """``step_line``, except that a turn whose tool failed last does not read as a plain success."""
        if isinstance(event, TurnStarted):
            self._tool_failed.clear()
            self._explained.clear()
        elif isinstance(event, ToolEnded):
            self._tool_failed[event.tool] = event.error is not None
        line = step_line(event)
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
