"""A console killed mid-answer loses no completed message: a real subprocess records real agent turns, is
SIGKILLed while an answer streams, and the reopened store has every completed message and the cut-off answer
marked incomplete (not offered to the model on resume)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from console.core.sessions import SessionStore
from tests.agents.helpers import agent, write_configs

ALICE = "alice@contoso.example"
ROOT = Path(__file__).resolve().parents[2]


def test_sigkill_mid_stream_keeps_every_completed_message(tmp_path: Path) -> None:
    configs = write_configs(
        tmp_path / "configs", {"main": agent("Front Agent", tools=["get_current_time", "get_current_date"])}
    )
    turns = 3
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.sessions.writer", str(configs), ALICE, str(turns)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ),
    )
    done: list[dict] = []
    streaming: dict | None = None
    try:
        assert process.stdout is not None
        for line in process.stdout:  # blocks until the writer reports; it never exits on its own
            message = json.loads(line)
            if "done" in message:
                done.append(message)
            else:
                streaming = message
                break
    finally:
        process.send_signal(signal.SIGKILL)
        _, stderr = process.communicate(timeout=30)
    assert process.returncode == -signal.SIGKILL, stderr
    assert streaming is not None, f"the writer never reached the stream: {stderr}"
    assert len(done) == turns

    store = SessionStore(ALICE)  # a new process's view of the same file
    summary = store.latest()
    assert summary is not None and summary.id == streaming["session"] and summary.interrupted
    loaded = store.load(summary.id)
    completed = [m for m in loaded.messages if m.complete]
    expected = []
    for turn in done:
        expected += [("user", turn["question"]), ("assistant", turn["done"])]
    expected.append(("user", "what time is it? tell me precisely"))
    assert [(m.role, m.text) for m in completed] == expected
    assert len(loaded.interrupted) == 1
    partial = loaded.interrupted[0]
    assert partial.role == "assistant" and partial.agent == "Front Agent"
    assert partial.text and streaming["streaming"].startswith(partial.text)  # what had streamed, no more
    assert loaded.messages[-1] is partial
    assert {"role": "assistant", "content": partial.text} not in loaded.input_list
    assert len(loaded.input_list) == 2 * turns + 1
