"""`doctor` as a person reads it (✓/✗ lines, the fix under each ✗, what was skipped and why), and without a
sign-in or a stack."""

from __future__ import annotations

import json

import pytest

from console.cli import main
from mcp_server import aadsts
from mcp_server.stack import LocalStack
from tests.doctor.conftest import ScenarioStack


def test_human_output_names_the_break_its_fix_and_what_was_skipped(
    scenario_stack: ScenarioStack, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["scenario", "apply", "wrong-secret"]) == 0
    capsys.readouterr()
    try:
        code = main(["doctor"])
        out = capsys.readouterr().out
    finally:
        assert main(["scenario", "reset"]) == 0
    lines = out.splitlines()
    assert code == 1
    assert [line.split(" ", 2)[:2] for line in lines[:6]] == [
        ["✓", "settings:"],
        ["✓", "local_ca:"],
        ["✓", "authority:"],
        ["✓", "public_client:"],
        ["✓", "token:"],
        ["✓", "mcp_server:"],
    ]
    entry = aadsts.AADSTS[7000215]
    # The server's cause is the table's meaning already: the line says it once, then the code.
    assert lines[6] == f"✗ obo: the on-behalf-of exchange failed: {entry.meaning} (AADSTS7000215)"
    assert lines[7] == f"    fix: {entry.fix}"
    assert lines[8] == "– clock: skipped: needs 'obo', which failed"
    assert "– query: skipped: needs 'obo', which failed" in lines
    assert lines[-1] == "Broken: obo; 2 skipped because of it (clock, query)."


def test_not_signed_in_fails_at_the_token_and_skips_what_needs_it(
    use_local_stack: LocalStack, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["doctor", "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    verdicts = {c["id"]: c["ok"] for c in report["checks"]}
    assert verdicts == {
        "settings": True,
        "local_ca": True,
        "authority": True,
        "public_client": True,
        "token": False,
        "mcp_server": True,
        "obo": None,
        "clock": None,
        "search_service": True,
        "index": True,
        "api_version": True,
        "query": None,
    }
    token = next(c for c in report["checks"] if c["id"] == "token")
    assert token["detail"] == "Not signed in." and "obo-console login" in token["fix"]


def test_without_a_stack_doctor_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["doctor", "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    first, *rest = report["checks"]
    assert report["ok"] is False and first["id"] == "settings" and first["ok"] is False
    assert first["detail"].startswith("No local stack is running") and "obo-console server" in first["fix"]
    assert rest and all(
        c["ok"] is None and c["detail"] == "skipped: needs 'settings', which failed" for c in rest
    )
