"""Headless `ask` meeting a Conditional Access claims challenge (carol, MFA for search): it says what is required
and the exact command that satisfies it, and exits 4; that command signs in with MFA and the same question then
gets carol's documents."""

from __future__ import annotations

import base64
import json
import re
import shlex
from pathlib import Path

import pytest

from console.cli import main
from mcp_server.stack import LocalStack
from tests.agents.helpers import desk_and_shelf, write_configs
from tests.server.helpers import expected_names

MFA_POLICY = "9ab03e19-ed42-4168-b6b7-7001fb3e933a"
CLAIMS = {"access_token": {"capolids": {"essential": True, "values": [MFA_POLICY]}}}


@pytest.fixture
def configs_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = write_configs(tmp_path / "configs", desk_and_shelf())
    monkeypatch.setenv("OBO_CONSOLE_CONFIGS_DIR", str(directory))
    return directory


def test_ask_names_the_challenge_and_the_command_then_that_command_satisfies_it(
    configs_dir: Path, use_local_stack: LocalStack, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["login", "--as", "carol"]) == 0
    assert "multi-factor" not in capsys.readouterr().err  # nothing asked for MFA at sign-in
    assert main(["ask", "show my documents", "--agent", "desk"]) == 4
    out, err = capsys.readouterr()
    assert out == ""
    error = next(line for line in err.splitlines() if line.startswith("obo-console: error:"))
    assert error == (
        f"obo-console: error: Conditional Access policy {MFA_POLICY} requires multi-factor authentication for "
        "https://search.azure.com (AADSTS50076); no documents were returned."
    )
    hint = re.search(
        r"Sign in again with the claims challenge: (obo-console login .+) — then ask again\.", err
    )
    assert hint is not None, err
    command = shlex.split(hint.group(1))
    assert command[:5] == ["obo-console", "login", "--as", "carol", "--claims"]
    assert json.loads(base64.urlsafe_b64decode(command[5])) == CLAIMS
    # The printed command, run as printed: the page asks for the second step, the shortcut confirms it.
    assert main(command[1:]) == 0
    assert re.search(
        r"asked for multi-factor authentication: confirmed number \d\d\.", capsys.readouterr().err
    )
    assert main(["ask", "show my documents", "--agent", "desk", "--json"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    search = [line for line in lines if line["kind"] == "search_results"]
    assert {d["name"] for d in search[-1]["documents"]} == expected_names(use_local_stack, "carol")
    assert search[-1]["obo_claims"]["amr"] == ["pwd", "mfa"] and lines[-1]["step_up"] is None


def test_ask_json_carries_the_challenge(
    configs_dir: Path, use_local_stack: LocalStack, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["login", "--as", "carol"]) == 0
    capsys.readouterr()
    assert main(["ask", "show my documents", "--agent", "desk", "--json"]) == 4
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    answer = lines[-1]
    assert answer["kind"] == "answer" and answer["output"] == ""
    step_up = answer["step_up"]
    assert {k: v for k, v in step_up.items() if k not in ("claims", "command")} == {
        "code": "insufficient_claims",
        "policy_ids": [MFA_POLICY],
        "resource": "https://search.azure.com",
        "required": "multi-factor authentication",
        "aadsts": 50076,
    }
    assert step_up["command"] == f"obo-console login --as carol --claims {step_up['claims']}"
    assert not [line for line in lines if line["kind"] == "search_results" and line["documents"]]


def test_a_garbled_claims_value_is_refused_by_login(
    use_local_stack: LocalStack, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["login", "--as", "carol", "--claims", "not*base64"]) == 1
    err = capsys.readouterr().err
    assert "obo-console: error: The --claims value cannot be used: its 'claims' is not base64url." in err


def test_ask_help_lists_exit_code_4(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["ask", "--help"])
    assert done.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "4 Conditional Access requires signing in again with a claims challenge (MFA)" in text
