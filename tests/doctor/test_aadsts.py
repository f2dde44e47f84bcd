"""The AADSTS table: every code the project can meet is in it, docs/aadsts.md is generated from it, and the console's
descriptions, the presenter and `ask` show its meaning and fix wherever a code appears."""

from __future__ import annotations

import ast
import io
import json
import re
from pathlib import Path

import pytest

from console.cli import main
from console.core.describe import describe
from console.core.events import SearchResults, ServerStep, ToolEnded
from console.core.flow import FlowModel, explain_aadsts
from console.core.printer import EventPrinter
from mcp_server import aadsts
from tests.agents.helpers import agent, write_configs
from tests.doctor.conftest import ScenarioStack

ROOT = Path(__file__).resolve().parents[2]


def _codes_raised() -> set[int]:
    """Every code the local identity platform and the server name: ``EntraError(error, CODE, ...)`` calls, and
    ``AADSTSnnnn`` in any string, across mcp_server and console."""
    codes: set[int] = set()
    for path in [*(ROOT / "mcp_server").rglob("*.py"), *(ROOT / "console").rglob("*.py")]:
        if path.name == "aadsts.py":
            continue
        text = path.read_text()
        codes |= {int(c) for c in re.findall(r"AADSTS(\d{4,8})", text)}
        for node in ast.walk(ast.parse(text)):
            if (
                isinstance(node, ast.Call)
                and getattr(node.func, "id", getattr(node.func, "attr", "")) == "EntraError"
            ) and (
                len(node.args) > 1
                and isinstance(node.args[1], ast.Constant)
                and isinstance(node.args[1].value, int)
            ):
                codes.add(node.args[1].value)
    return codes


def test_every_code_the_project_can_meet_is_explained() -> None:
    raised = _codes_raised()
    assert {65001, 7000215, 7000222, 50076, 53003, 70016} <= raised  # the scan finds them
    assert sorted(raised - set(aadsts.AADSTS)) == []
    for entry in aadsts.AADSTS.values():
        assert entry.meaning and entry.fix and entry.step in ("obo", "sign-in")


def test_docs_are_generated_from_the_table() -> None:
    assert (ROOT / "docs" / "aadsts.md").read_text() == aadsts.markdown()


def test_lookup_and_explain() -> None:
    assert aadsts.lookup("AADSTS65001") is aadsts.lookup(65001) is aadsts.lookup(" 65001 ")
    assert aadsts.lookup("AADSTS1") is None and aadsts.lookup("x") is None and aadsts.lookup(None) is None
    assert [e.code for e in aadsts.codes_in("AADSTS7000215: bad\nAADSTS7000215 again, AADSTS50076")] == [
        7000215,
        50076,
    ]
    assert (
        aadsts.explain(7000222)
        == f"AADSTS7000222: {aadsts.AADSTS[7000222].meaning}. Fix: {aadsts.AADSTS[7000222].fix}"
    )


def test_events_presenter_and_printer_show_meaning_and_fix() -> None:
    entry = aadsts.AADSTS[65001]
    failed = SearchResults(
        call_id="c1", error="On-behalf-of token exchange failed (AADSTS65001): x", aadsts="AADSTS65001"
    )
    details = dict(describe(failed).details)
    assert details["AADSTS65001"] == entry.meaning and details["fix"] == entry.fix
    tool = ToolEnded(tool="get_documents", tool_type="mcp", call_id="c1", error="failed (AADSTS7000215)")
    assert dict(describe(tool).details)["fix"] == aadsts.AADSTS[7000215].fix
    step = ServerStep(call_id="c1", step="obo_exchange", status="error", detail={"aadsts": "AADSTS50076"})
    assert dict(describe(step).details)["AADSTS50076"] == aadsts.AADSTS[50076].meaning

    assert explain_aadsts("AADSTS65001") == f"AADSTS65001: {entry.meaning}"
    flow = FlowModel()
    flow.signed_in("alice@contoso.example")
    flow.apply(step)
    obo = flow.step("obo")
    assert (
        obo.error == f"AADSTS50076: {aadsts.AADSTS[50076].meaning}"
        and obo.fact("fix") == aadsts.AADSTS[50076].fix
    )

    err = io.StringIO()
    printer = EventPrinter(out=io.StringIO(), err=err)
    for event in (step, failed, tool):
        printer.handle(event)
    text = err.getvalue()
    assert (
        text.count(f"  AADSTS50076: {aadsts.AADSTS[50076].meaning}.\n  Fix: {aadsts.AADSTS[50076].fix}\n")
        == 1
    )
    assert text.count("  AADSTS65001: ") == 1 and f"  Fix: {entry.fix}" in text
    out = io.StringIO()
    EventPrinter(json_lines=True, out=out).handle(failed)
    assert json.loads(out.getvalue())["aadsts_explained"] == {
        "code": "AADSTS65001",
        "meaning": entry.meaning,
        "fix": entry.fix,
    }


def test_ask_explains_the_code_of_a_broken_link(
    scenario_stack: ScenarioStack,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    configs = write_configs(tmp_path / "configs", {"shelf": agent("Shelf Agent", mcp_servers=["documents"])})
    monkeypatch.setenv("OBO_CONSOLE_CONFIGS_DIR", str(configs))
    assert main(["scenario", "apply", "consent-missing"]) == 0
    try:
        capsys.readouterr()
        main(["ask", "show my documents", "--agent", "shelf"])
        err = capsys.readouterr().err
        main(["ask", "show my documents", "--agent", "shelf", "--json"])
        lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    finally:
        assert main(["scenario", "reset"]) == 0
    entry = aadsts.AADSTS[65001]
    assert f"  AADSTS65001: {entry.meaning}.\n  Fix: {entry.fix}\n" in err
    explained = [line["aadsts_explained"] for line in lines if "aadsts_explained" in line]
    assert explained and explained[0] == {"code": "AADSTS65001", "meaning": entry.meaning, "fix": entry.fix}
