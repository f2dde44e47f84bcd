"""Memory over a long session: the real ``obo-console`` in a pseudo-terminal (160×45, xterm-256color, its own
temporary home), the local stack it launches, the offline model, signed in as alice, asked "show my documents" and
"what time is it" in turn, one question every ~1.5 s. Prints the console process's resident memory (RSS, the
launched stack's own process not included) when signed in and after turns 1, 10, 50, 100, 200 and 300 (or the
last), and the ratios of turns 50 and the last to turn 1 (target: the steady state within 1.2× of turn 1).

A turn is over when its answer is saved in the account's session database (a read-only look from this process);
RSS is read from /proc just before the next question, at least ``SETTLED`` seconds after the answer, once the
console has settled its heap between turns.

Run: .venv/bin/python -m benchmarks.bench_console_soak [--turns 300] [--period 1.5]
"""

from __future__ import annotations

import argparse
import os
import select
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

import pyte

from tests.ui.terminal import Terminal, alive, console_env

TARGET_RATIO = 1.2
QUESTIONS = ("show my documents", "what time is it")
MARKS = (1, 10, 50, 100, 200, 300)  # turns after which RSS is printed (and the last one)
# Seconds from an answer to reading RSS at least: the console settles its heap half a second after a turn
# (console.ui.app.HEAP_SETTLE_DELAY), and a slow turn leaves no rest of the period to wait for it.
SETTLED = 1.5


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def _env(home: Path) -> dict[str, str]:
    return console_env(
        home,
        drop=("TEXTUAL", "OPENAI_API_KEY", "PYTHON_KEYRING_BACKEND"),
        TERM="xterm-256color",
        COLUMNS="160",
        LINES="45",
        OBO_CONSOLE_KEYRING_BACKEND="file",
    )


class Output:
    """What the console draws, read (so it never blocks on a full terminal) and mostly dropped: parsing every
    frame with a terminal emulator would take CPU from the console being measured. The latest output is kept to
    show the screen when something goes wrong."""

    KEEP = 1 << 20

    def __init__(self, term: Terminal) -> None:
        self.term = term
        self.tail = bytearray()

    def drain(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            ready, _, _ = select.select([self.term.fd], [], [], min(left, 0.05))
            if not ready:
                continue
            try:
                data = os.read(self.term.fd, 1 << 20)
            except OSError:
                return
            if not data:
                return
            self.tail += data
            del self.tail[: max(0, len(self.tail) - self.KEEP)]

    def screen(self) -> str:
        """The screen as the latest output left it (approximately: it starts mid-stream)."""
        screen = pyte.Screen(self.term.columns, self.term.lines)
        pyte.ByteStream(screen).feed(bytes(self.tail))
        return "\n".join(screen.display)


def saved(home: Path) -> tuple[int, int]:
    """(questions, completed answers or failures) in the signed-in account's saved conversations."""
    folder = home / "sessions"
    asked = answered = 0
    for db in folder.glob("*.db") if folder.exists() else []:
        try:
            with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as con:
                rows = con.execute(
                    "SELECT role = 'user', count(*) FROM messages WHERE complete = 1 GROUP BY 1"
                )
                for is_question, count in rows:
                    asked, answered = (asked + count, answered) if is_question else (asked, answered + count)
        except sqlite3.Error:
            continue  # created but not ready yet: the next look counts it
    return asked, answered


def ask(term: Terminal, out: Output, home: Path, n: int, question: str) -> None:
    """Type the question, then enter on its own (a burst with enter reads as a paste); wait for its answer."""
    term.press(question.encode())
    out.drain(0.1)
    term.press(b"\r")
    deadline = time.monotonic() + 90
    enter_again = time.monotonic() + 5
    while saved(home)[1] < n:
        if saved(home)[0] < n and time.monotonic() > enter_again:
            # The enter was read with the question's last keys as one burst (a paste, which does not submit):
            # the question is still in the prompt, so enter once more.
            term.press(b"\r")
            enter_again = time.monotonic() + 5
        if time.monotonic() > deadline or not alive(term.pid):
            state = "still running" if alive(term.pid) else "exited"
            raise RuntimeError(
                f"no answer to turn {n} ({question!r}); the console {state}, questions/answers "
                f"saved {saved(home)}; the screen:\n{out.screen()}"
            )
        out.drain(0.05)


def soak(turns: int, period: float) -> dict[str, float]:
    console = str(Path(sys.executable).with_name("obo-console"))
    figures: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        term = Terminal([console], _env(home), size=(160, 45), cwd=str(home))
        try:
            term.wait_for(
                "Waiting for you to approve", timeout=120
            )  # the stack is up, the sign-in screen open
            term.press(b"1")  # complete the sign-in page as alice
            term.wait_for(
                lambda s: "Sign in to OBO Console" not in s and "<alice@" in s and "● ready" in s, 60
            )
            Output(term).drain(2.0)
            figures["signed in"] = rss_mb(term.pid)
            print(f"signed in: {figures['signed in']:.1f} MB", flush=True)
            out = Output(term)
            for n in range(1, turns + 1):
                started = time.monotonic()
                ask(term, out, home, n, QUESTIONS[(n - 1) % len(QUESTIONS)])
                marked = n in MARKS or n == turns
                rest = max(SETTLED if marked else 0.0, period - (time.monotonic() - started))
                out.drain(rest)
                if marked:
                    figures[f"turn {n}"] = rss_mb(term.pid)
                    print(f"turn {n}: {figures[f'turn {n}']:.1f} MB", flush=True)
            term.press(b"\x11")  # ctrl+q: the console stops the stack it launched
            term.wait_exit(timeout=60)
        finally:
            term.kill()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=300)
    parser.add_argument("--period", type=float, default=1.5, help="seconds from one question to the next")
    args = parser.parse_args()
    figures = soak(args.turns, args.period)
    first = figures["turn 1"]
    shown = [n for n in (1, 50, args.turns) if f"turn {n}" in figures]
    print(
        f"RSS signed in {figures['signed in']:.1f} MB; "
        + "; ".join(f"turn {n}: {figures[f'turn {n}']:.1f} MB" for n in dict.fromkeys(shown))
    )
    ratios = [f"turn {n} / turn 1: {figures[f'turn {n}'] / first:.2f}x" for n in dict.fromkeys(shown[1:])]
    ratio = figures[f"turn {args.turns}"] / first
    verdict = "OK" if ratio <= TARGET_RATIO else "OVER TARGET"
    print(f"ratio {'; '.join(ratios)} (target <= {TARGET_RATIO}x): {verdict}")


if __name__ == "__main__":
    main()
