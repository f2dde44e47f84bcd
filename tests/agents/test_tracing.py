"""Local tracing: JSON lines in the data dir, private, secrets masked; export to OpenAI only on opt-in."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from agents import Agent, Runner, function_tool
from agents.tracing.processors import BatchTraceProcessor

from console.core.agents.offline_model import OfflineModel
from console.core.agents.tracing import (
    LocalJsonlProcessor,
    active_processors,
    install_tracing,
    mask,
    mask_text,
)
from console.core.settings import Settings

JWT = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSIsImV4cCI6OTk5OTk5OTk5OX0.c2lnbmF0dXJlLXNpZ25hdHVyZQ"


def test_mask_text_and_structures() -> None:
    text = f"token {JWT} and Authorization: Bearer abcdefgh12345678 key sk-proj-ABCDEFGHIJKLMNOP client_secret=hunter2hunter2"
    masked = mask_text(text)
    assert JWT not in masked and "abcdefgh12345678" not in masked and "sk-proj-ABCDEFGHIJKLMNOP" not in masked
    assert "hunter2" not in masked and masked.count("***") == 4
    data = mask(
        {"access_token": "opaque-value", "nested": [{"api_key": "k"}], "input_tokens": 12, "note": JWT}
    )
    assert data == {"access_token": "***", "nested": [{"api_key": "***"}], "input_tokens": 12, "note": "***"}


async def test_traces_stay_local_and_masked(isolated_home: Path) -> None:
    local = install_tracing(Settings())
    assert active_processors() == [local]  # the SDK's exporter to OpenAI is not installed

    @function_tool
    def leak() -> str:
        """Return a credential-looking string (to prove it is masked in traces)."""
        return f"Bearer {JWT}"

    agent = Agent(name="Tracer", instructions="x", model=OfflineModel(), tools=[leak])
    result = await Runner.run(agent, "leak it")
    assert JWT in str(result.final_output)  # the run itself is untouched; only traces are masked
    path = local.path
    assert path.parent == isolated_home / "traces"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    records = [json.loads(line) for line in path.read_text().splitlines()]
    kinds = {r.get("span_data", {}).get("type") for r in records if r.get("object") == "trace.span"}
    assert {"agent", "function"} <= kinds
    assert any(r.get("object") == "trace" for r in records)
    assert JWT not in path.read_text() and "***" in path.read_text()


def test_openai_export_only_on_opt_in(tmp_path: Path) -> None:
    install_tracing(Settings(), tmp_path)
    assert [type(p) for p in active_processors()] == [LocalJsonlProcessor]
    install_tracing(Settings(export_traces_to_openai=True), tmp_path)
    assert [type(p) for p in active_processors()] == [LocalJsonlProcessor, BatchTraceProcessor]
    install_tracing(Settings())  # leave the process without an exporter, tracing to the data dir
