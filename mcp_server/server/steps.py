"""What the console sees of a tool call but the model does not: the steps, as MCP progress notifications while the
tool runs and in the result's ``_meta`` at the end."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from fastmcp import Context

META_KEY = "obo_console"  # the result's _meta[META_KEY] holds the trace; the model never reads _meta
STEPS = ("validate", "obo_exchange", "search")


@dataclass
class StepTrace:
    ctx: Context | None
    steps: list[dict[str, Any]] = field(default_factory=list)

    async def record(self, step: str, status: str, duration_ms: float, **detail: Any) -> None:
        entry = {"step": step, "status": status, "duration_ms": round(duration_ms, 3), **detail}
        self.steps.append(entry)
        if self.ctx is not None:
            # Progress message: one compact JSON object per step (progress = steps done, total = 3).
            await self.ctx.report_progress(
                progress=len(self.steps), total=len(STEPS), message=json.dumps(entry, separators=(",", ":"))
            )

    def duration(self, step: str) -> float | None:
        return next((s["duration_ms"] for s in self.steps if s["step"] == step), None)


def parse_progress_message(message: str | None) -> dict[str, Any] | None:
    """The step a progress notification carries (for clients), or None if it is not one of ours."""
    if not message:
        return None
    try:
        value = json.loads(message)
    except ValueError:
        return None
    return value if isinstance(value, dict) and value.get("step") in STEPS else None
