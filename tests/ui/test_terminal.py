"""The real `obo-console` in a pseudo-terminal (160×45, xterm-256color, its own OBO_CONSOLE_HOME), read through
pyte as a person would read it: the title and panes, the local stack it launches, the sign-in prompt, signing in
as alice and asking for her documents; then ctrl+q quits cleanly and nothing it started is left running."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from tests.ui.terminal import Terminal, alive, console_env

OBO_CONSOLE = str(Path(sys.executable).with_name("obo-console"))


def _env(home: Path) -> dict[str, str]:
    return console_env(home, TERM="xterm-256color", COLUMNS="160", LINES="45")


def test_real_console_in_a_terminal_shows_panes_and_sign_in_then_quits_cleanly(isolated_home: Path) -> None:
    term = Terminal([OBO_CONSOLE], _env(isolated_home), size=(160, 45), cwd=str(isolated_home))
    try:
        panes = ("OBO Console", "Chat", "Claims", "Agent", "Search results", "Events", "Server log")
        screen = term.wait_for(lambda s: all(p in s for p in panes), timeout=30)
        assert "not signed in (F2)" in screen and "server" in screen
        # The console launches the local stack, then (nobody signed in yet) opens the device-code sign-in.
        screen = term.wait_for("Sign in to OBO Console", timeout=90)
        screen = term.wait_for(lambda s: "Waiting for you to approve" in s, timeout=30)
        assert "Enter this code" in screen and "https://127.0.0.1:" in screen
        for user in ("alice@", "bob@", "carol@"):
            assert user in screen, user
        launched = set(term.descendants)
        assert launched, "the console should have launched the local stack"
        term.press(b"1")  # the presenter's choice: complete the sign-in page as alice
        screen = term.wait_for(lambda s: "Sign in to OBO Console" not in s and "<alice@" in s, timeout=60)
        assert "● ready" in screen and "(launched)" in screen
        term.press(b"show my documents")
        term.wait_for(
            "▊ show my documents", timeout=10
        )  # typed into the prompt (a burst with enter is a paste)
        term.press(b"\r")
        screen = term.wait_for(lambda s: "ran as" in s and "visible" in s, timeout=90)
        assert "search.azure.com" in screen  # the OBO token's audience, beside the user token's
        assert "eyJ" not in screen  # claims, never a token
        term.press(b"\x11")  # ctrl+q
        assert term.wait_exit(timeout=30) == 0
        deadline = time.monotonic() + 10
        while any(alive(pid) for pid in term.descendants) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not [pid for pid in term.descendants if alive(pid)], "the launched stack is still running"
        assert not (isolated_home / "local-stack.json").exists()
    finally:
        term.kill()
