"""Console benchmarks, every figure beside a baseline measured in the same run:

1. time to the console's first frame (and to "usable": prompt + footer keys) versus a minimal Textual app started
   the same way (a fresh interpreter in a pseudo-terminal, 160×45). Target: ≤ 1.5×;
2. Enter on "show my documents" → the document rows on screen (the real app, the real Workspace, a local stack on
   free ports in a temporary home, the offline model, signed in as alice), p50 over N turns. Target: ≤ 100 ms.
   Beside it: when the core published the results in the same turns;
3. keystroke → the character in the prompt while a long answer streams, versus the same keystrokes at rest.

    .venv/bin/python -m benchmarks.bench_console [--runs N] [--turns N] [--keys N] [--skip-startup]
"""

from __future__ import annotations

import argparse
import os
import select
import statistics
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from tests.ui.terminal import Terminal, console_env

MINIMAL_APP = textwrap.dedent(
    """
    from textual.app import App
    from textual.widgets import Footer, Header, Static

    class Minimal(App):
        def compose(self):
            yield Header()
            yield Static("Minimal ready")
            yield Footer()

    Minimal().run()
    """
)
# Text of the first frame; matched in the raw output (a terminal emulator in Python would add its own parse time,
# which grows with the size of the frame, to what is measured).
CONSOLE_READY = (b"OBO Console", b"Chat", b"Claims", b"Agent", b"Search results", b"Events")
# ... and once the prompt and the footer's keys are there too (they mount right after the first frame).
CONSOLE_USABLE = (*CONSOLE_READY, b"enter sends", b"Help")
MINIMAL_READY = (b"Minimal ready", b"palette")


def _env(home: Path) -> dict[str, str]:
    return console_env(home, drop=(), TERM="xterm-256color")


def _stages_seen(term: Terminal, stages: tuple[tuple[bytes, ...], ...], timeout: float) -> list[float]:
    """When the raw output first held every marker of each stage (one read loop: a later stage may arrive in the
    same write as an earlier one)."""
    seen = bytearray()
    times: list[float] = []
    deadline = time.monotonic() + timeout
    while len(times) < len(stages):
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {stages[len(times)]!r}")
        ready, _, _ = select.select([term.fd], [], [], 0.01)
        if ready:
            seen += os.read(term.fd, 1 << 20)
            now = time.monotonic()
            while len(times) < len(stages) and all(marker in seen for marker in stages[len(times)]):
                times.append(now)
    return times


def first_frame(argv: list[str], *stages: tuple[bytes, ...], home: Path) -> list[float]:
    """Seconds from spawning the process to output holding every marker of each stage in turn."""
    start = time.monotonic()
    term = Terminal(argv, _env(home), size=(160, 45), cwd=str(home))
    try:
        elapsed = [t - start for t in _stages_seen(term, stages, timeout=60)]
        term.press(b"\x11")  # ctrl+q
        term.wait_exit(timeout=60)
        return elapsed
    finally:
        term.kill()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="start-up runs of each app")
    parser.add_argument("--turns", type=int, default=15, help='"show my documents" turns')
    parser.add_argument("--keys", type=int, default=40, help="keystrokes at rest and while streaming")
    parser.add_argument("--skip-startup", action="store_true", help="only the in-app figures (2 and 3)")
    args = parser.parse_args()
    if not args.skip_startup:
        startup(args.runs)
    interaction(args.turns, args.keys)
    return 0


def interaction(turns: int, keys: int) -> None:
    from benchmarks._console_interaction import measure, p50_ms

    with tempfile.TemporaryDirectory() as tmp:
        figures = measure(Path(tmp), runs=turns, keys=keys)

    def runs(samples: list[float]) -> str:
        return ", ".join(f"{x * 1000:.0f}" for x in samples)

    ui, core = p50_ms(figures.enter_to_rows_ui), p50_ms(figures.enter_to_results_event)
    rows_p90 = statistics.quantiles(figures.enter_to_rows_ui, n=10)[-1] * 1000
    print(
        f'Enter on "show my documents" -> rows on screen:  p50 {ui:5.1f} ms  p90 {rows_p90:.1f} ms  '
        f"max {max(figures.enter_to_rows_ui) * 1000:.1f} ms  (target p50 <= 100 ms; runs: "
        f"{runs(figures.enter_to_rows_ui)})"
    )
    print(
        f"  baseline, same turns: results published by the core  p50 {core:5.1f} ms  -> the UI adds "
        f"{ui - core:.1f} ms ({ui / core:.2f}x)"
    )
    idle, busy = p50_ms(figures.key_idle), p50_ms(figures.key_streaming)
    worst = max(figures.key_streaming) * 1000
    p90 = statistics.quantiles(figures.key_streaming, n=10)[-1] * 1000
    print(
        f"keystroke -> prompt, while an answer streams:     p50 {busy:5.1f} ms  p90 {p90:.1f} ms  max {worst:.1f} ms  "
        f"({len(figures.key_streaming)} keys, {figures.fragments_streamed} fragments streamed)"
    )
    print(f"  baseline, same run: keystroke -> prompt at rest  p50 {idle:5.1f} ms  -> {busy / idle:.2f}x")


def startup(runs: int) -> None:
    python = sys.executable
    console = str(Path(python).with_name("obo-console"))
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        script = home / "minimal_app.py"
        script.write_text(MINIMAL_APP)
        minimal: list[float] = []
        frame: list[float] = []
        usable: list[float] = []
        first_frame([python, str(script)], MINIMAL_READY, home=home)  # warm the file cache for both
        first_frame([console], CONSOLE_READY, home=home)
        for _ in range(runs):  # interleaved, so machine load affects both alike
            minimal += first_frame([python, str(script)], MINIMAL_READY, home=home)
            first, ready = first_frame([console], CONSOLE_READY, CONSOLE_USABLE, home=home)
            frame.append(first)
            usable.append(ready)

    def line(label: str, runs: list[float]) -> str:
        return (
            f"{label:<38} median {statistics.median(runs) * 1000:4.0f} ms  (runs: "
            + ", ".join(f"{x * 1000:.0f}" for x in runs)
            + ")"
        )

    base = statistics.median(minimal)
    print(line("minimal Textual app, first frame:", minimal))
    print(line("obo-console, first frame (all panes):", frame))
    print(line("obo-console, usable (prompt + keys):", usable))
    print(
        f"ratio first frame / minimal: {statistics.median(frame) / base:.2f}x   "
        f"usable / minimal: {statistics.median(usable) / base:.2f}x   (target <= 1.5x)"
    )


if __name__ == "__main__":
    sys.exit(main())
