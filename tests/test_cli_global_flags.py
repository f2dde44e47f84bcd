"""The global flags (--mode, --state-file, --home, --connect) work before and after the sub-command, at any depth;
given in both places, the later one wins. Parsed by the real parser, and run by the real CLI in processes."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from console.cli import _accept_global_flags, build_parser, main
from tests.server.test_cli import wait_for_file

# (flag, value given, the attribute, the parsed value)
FLAGS = [
    ("--mode", "azure", "mode", "azure"),
    ("--state-file", "/tmp/stack.json", "state_file", Path("/tmp/stack.json")),
    ("--home", "/tmp/obo-home", "home", Path("/tmp/obo-home")),
    ("--connect", "https://mcp.example/mcp", "connect", "https://mcp.example/mcp"),
]
# Each sub-command with the arguments it needs, including a nested one.
COMMANDS = [
    ["server"],
    ["login"],
    ["logout", "--all"],
    ["whoami"],
    ["ask", "hi"],
    ["configs", "list"],
    ["provision"],
    ["rotate-keys"],
]


@pytest.mark.parametrize(("flag", "value", "dest", "parsed"), FLAGS)
@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c))
def test_flag_before_and_after_the_sub_command(
    command: list[str], flag: str, value: str, dest: str, parsed: object
) -> None:
    parser = build_parser()
    before = parser.parse_args([flag, value, *command])
    after = parser.parse_args([*command, flag, value])
    assert getattr(before, dest) == parsed and getattr(after, dest) == parsed
    assert before.command == after.command == command[0]


@pytest.mark.parametrize(("flag", "value", "dest", "parsed"), FLAGS)
def test_not_repeated_after_the_sub_command_keeps_the_value_given_before(
    flag: str, value: str, dest: str, parsed: object
) -> None:
    args = build_parser().parse_args([flag, value, "configs", "validate", "--json"])
    assert getattr(args, dest) == parsed
    assert build_parser().parse_args(["configs", "validate"]).__dict__[dest] is None


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--home", "/a", "whoami", "--home", "/b"], Path("/b")),
        (["--home", "/a", "configs", "--home", "/b", "list"], Path("/b")),
        (["--home", "/a", "configs", "--home", "/b", "list", "--home", "/c"], Path("/c")),
        (["whoami", "--home", "/a", "--home", "/b"], Path("/b")),
    ],
)
def test_given_twice_the_later_one_wins(argv: list[str], expected: Path) -> None:
    assert build_parser().parse_args(argv).home == expected


def test_a_bad_value_after_the_sub_command_is_refused_with_the_choices(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(["whoami", "--mode", "cloud"])
    assert exited.value.code == 2
    assert (
        "obo-console whoami: error: argument --mode: invalid choice: 'cloud' (choose from 'local', 'azure')"
        in capsys.readouterr().err
    )


def test_a_sub_command_defining_a_global_flag_itself_does_not_reset_the_earlier_value() -> None:
    parser = argparse.ArgumentParser(prog="p")
    parser.add_argument("--connect")
    sub = parser.add_subparsers(dest="command")
    own = sub.add_parser("ask")
    own.add_argument("--connect", help="its own help")
    _accept_global_flags(parser)
    assert parser.parse_args(["--connect", "u1", "ask"]).connect == "u1"
    assert parser.parse_args(["--connect", "u1", "ask", "--connect", "u2"]).connect == "u2"
    assert parser.parse_args(["ask"]).connect is None


def test_mode_after_the_sub_command_takes_effect(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("OBO_CONSOLE_MODE", "local")
    assert main(["--mode", "local", "login", "--as", "alice", "--mode", "azure"]) == 1
    assert capsys.readouterr().err.startswith(
        "obo-console: error: --as works only in local mode (the demo tenant)."
    )
    assert os.environ["OBO_CONSOLE_MODE"] == "local"  # the flag reached the settings, not the environment


def test_home_reaches_the_command_and_leaves_the_environment_untouched(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("OBO_CONSOLE_HOME", str(tmp_path / "decoy"))
    monkeypatch.delenv("OBO_CONSOLE_MODE", raising=False)
    monkeypatch.delenv("OBO_CONSOLE_STATE_FILE", raising=False)
    before = dict(os.environ)
    home = tmp_path / "home"
    assert (
        main(
            ["--home", str(home), "rotate-keys", "--mode", "local", "--state-file", str(tmp_path / "s.json")]
        )
        == 1
    )
    assert capsys.readouterr().err.startswith(
        f"obo-console: error: No signing keys at {home / 'localcloud' / 'signing-keys.json'}:"
    )
    assert dict(os.environ) == before
    from mcp_server.paths import data_dir

    assert data_dir() == tmp_path / "decoy"  # --home held for that command only


def _run(env: dict[str, str], cwd: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "console.cli", *argv],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=120,
    )


def test_server_login_whoami_with_every_flag_after_the_sub_command(tmp_path: Path) -> None:
    """The issue's command, `obo-console server --state-file PATH`, and the flags after login and whoami too."""
    home, decoy, state_file = tmp_path / "home", tmp_path / "decoy", tmp_path / "elsewhere" / "stack.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("OBO_CONSOLE_")}
    env |= {"OBO_CONSOLE_HOME": str(decoy), "OBO_CONSOLE_KEYRING_BACKEND": "file"}
    ports = ["--port", "0", "--identity-port", "0", "--search-port", "0", "--calculator-port", "0"]
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "console.cli",
            "server",
            *ports,
            "--state-file",
            str(state_file),
            "--home",
            str(home),
            "--mode",
            "local",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    try:
        state = wait_for_file(state_file, server)
        assert state["pid"] == server.pid
        login = _run(
            env, tmp_path, "login", "--as", "alice", "--state-file", str(state_file), "--home", str(home)
        )
        assert login.returncode == 0, login.stderr
        assert login.stdout.startswith("Signed in as Alice")
        whoami = _run(env, tmp_path, "whoami", "--json", "--home", str(home), "--state-file", str(state_file))
        assert whoami.returncode == 0, whoami.stderr
        assert json.loads(whoami.stdout)["account"]["username"] == "alice@contoso.example"
        # Everything went to --home: the decoy OBO_CONSOLE_HOME was never used.
        assert (home / "localcloud").is_dir() and not decoy.exists()
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert not state_file.exists()


def test_a_server_the_console_launches_gets_home_in_its_own_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from console.core.server_link import LinkTimings, ServerLink
    from console.core.settings import Settings
    from mcp_server.errors import UserError
    from mcp_server.paths import use_home

    monkeypatch.setenv("OBO_CONSOLE_HOME", str(tmp_path / "decoy"))
    script = "import os, sys; print('home=' + os.environ['OBO_CONSOLE_HOME'], file=sys.stderr); sys.exit(3)"
    settings = Settings(
        mode="local",
        state_file=tmp_path / "stack.json",
        mcp_port=0,
        identity_port=0,
        search_port=0,
        calculator_port=0,
    )
    home = tmp_path / "home"
    with use_home(home):
        link = ServerLink(
            settings,
            server_command=[sys.executable, "-c", script],
            timings=LinkTimings(startup_timeout=60, poll_interval=0.2),
        )
        try:
            with pytest.raises(UserError) as failed:
                link.start()
        finally:
            link.close()
    assert f"home={home.resolve()}" in str(failed.value)
    assert os.environ["OBO_CONSOLE_HOME"] == str(tmp_path / "decoy")
