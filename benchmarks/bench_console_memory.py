"""Peak memory with a 5,000-message conversation held in the session store and in the chat view's data model
(target < 300 MB), against the same console with an empty conversation, measured in the same run.

Each case runs in its own process (peak RSS is per process): it records the conversation through the session
store as the console does (TurnStarted/TurnEnded events, committed one by one), loads it back (messages + the
agent input list), then opens the real console app (headless, 160×45, a fixed-data workspace) and shows the
conversation in the chat pane, which keeps every message as data and mounts only the latest window.

Run: .venv/bin/python -m benchmarks.bench_console_memory [--messages 5000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_MB = 300.0
ROOT = Path(__file__).resolve().parents[1]
PARAGRAPH = (
    "Here is what I found in **your documents**: the quarterly report lists revenue by region, "
    "the onboarding notes describe the first week, and the calendar names every public holiday. "
)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: kilobytes


async def child(messages: int) -> dict[str, float]:
    from console.core.events import TurnEnded, TurnStarted
    from console.core.sessions import SessionStore
    from console.core.workspace_views import ChatEntry, Role
    from console.ui.app import OboConsoleApp
    from console.ui.widgets.chat_pane import ChatPane
    from tests.ui.fake_workspace import FakeWorkspace

    user = "alice@contoso.example"
    store = SessionStore(user)
    session = store.new_session("conversation")
    started = time.perf_counter()
    for turn in range(messages // 2):
        turn_id = f"t{turn}"
        store.record(TurnStarted(account=user, turn_id=turn_id, text=f"question {turn}: show my documents"))
        store.record(
            TurnEnded(
                account=user,
                turn_id=turn_id,
                agent="Documents agent",
                output=f"Answer {turn}. " + PARAGRAPH * 2,
                last_agent="Documents agent",
            )
        )
    record_s = time.perf_counter() - started
    started = time.perf_counter()
    loaded = store.load(session)
    load_s = time.perf_counter() - started
    assert len(loaded.messages) == messages // 2 * 2

    workspace = FakeWorkspace()
    workspace.save_session("s0", [ChatEntry(Role(m.role), m.text, m.agent) for m in loaded.messages])
    workspace.resume_session("s0")
    app = OboConsoleApp(workspace=workspace, settle_heap=True)  # as obo-console runs it
    async with app.run_test(size=(160, 45)) as pilot:
        await pilot.pause()
        started = time.perf_counter()
        await app.main_screen.reload_chat()
        await pilot.pause()
        show_s = time.perf_counter() - started
        chat = app.main_screen.query_one(ChatPane)
        held, mounted = len(chat.entries), len(chat.mounted_messages)
    store.close()
    return {
        "messages": len(loaded.messages),
        "held": held,
        "mounted": mounted,
        "peak_mb": peak_rss_mb(),
        "record_s": record_s,
        "load_s": load_s,
        "show_s": show_s,
        "db_mb": sum(p.stat().st_size for p in store.path.parent.iterdir()) / 2**20,
    }


def run_case(messages: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as home:
        env = dict(os.environ, OBO_CONSOLE_HOME=home, OBO_CONSOLE_KEYRING_BACKEND="file")
        out = subprocess.run(
            [sys.executable, "-m", "benchmarks.bench_console_memory", "--child", str(messages)],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(asyncio.run(child(args.child))))
        return
    baseline = run_case(0)
    loaded = run_case(args.messages)
    print(f"empty conversation:      peak RSS {baseline['peak_mb']:7.1f} MB")
    print(
        f"{loaded['messages']:,} messages:          peak RSS {loaded['peak_mb']:7.1f} MB "
        f"(ratio {loaded['peak_mb'] / baseline['peak_mb']:.2f}×, +{loaded['peak_mb'] - baseline['peak_mb']:.1f} MB)"
    )
    print(f"  chat pane holds {loaded['held']:,} messages, {loaded['mounted']} mounted as widgets")
    print(
        f"  recorded in {loaded['record_s']:.2f} s ({loaded['messages'] / max(loaded['record_s'], 1e-9):,.0f} "
        f"messages/s, each committed), loaded in {loaded['load_s'] * 1000:.0f} ms, shown in "
        f"{loaded['show_s'] * 1000:.0f} ms; database {loaded['db_mb']:.1f} MB"
    )
    verdict = "OK" if loaded["peak_mb"] < TARGET_MB else "OVER TARGET"
    print(f"target < {TARGET_MB:.0f} MB: {verdict}")


if __name__ == "__main__":
    main()
