"""Each scenario applied → `doctor --json` names exactly the broken check → `reset` → every check passes."""

from __future__ import annotations

import re

import pytest

from console.core.doctor.runner import CHECK_IDS
from mcp_server import aadsts
from mcp_server.scenarios import SCENARIOS
from tests.doctor.conftest import ScenarioStack, run_json

LOCAL_CHECKS = list(CHECK_IDS)  # with_redis: the console uses Redis, so it is checked too


def test_doctor_passes_on_a_working_stack(
    with_redis: ScenarioStack, capsys: pytest.CaptureFixture[str]
) -> None:
    code, report = run_json(capsys, "doctor")
    assert [c["id"] for c in report["checks"]] == LOCAL_CHECKS
    assert report["ok"] is True and code == 0, report
    assert all(c["ok"] is True and c["fix"] is None for c in report["checks"])


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_scenario_is_named_by_doctor_and_reset_restores(
    name: str, with_redis: ScenarioStack, capsys: pytest.CaptureFixture[str]
) -> None:
    scenario = SCENARIOS[name]
    code, applied = run_json(capsys, "scenario", "apply", name)
    assert code == 0 and applied["active"] == name
    try:
        code, report = run_json(capsys, "doctor")
        failed = [c["id"] for c in report["checks"] if c["ok"] is False]
        assert (code, report["ok"], failed) == (1, False, [scenario.check]), report
        broken = next(c for c in report["checks"] if c["id"] == scenario.check)
        assert broken["fix"], broken
        entry = aadsts.lookup(next(iter(re.findall(r"AADSTS\d+", broken["detail"])), None))
        if entry is not None:  # the code's meaning is said, and said once
            assert broken["detail"].count(entry.meaning) == 1 and broken["fix"] == entry.fix, broken
        after = LOCAL_CHECKS[LOCAL_CHECKS.index(scenario.check) + 1 :]
        for check in report["checks"]:
            if check["ok"] is None:
                assert check["skipped"] is True and check["detail"].startswith("skipped: needs '")
                assert check["id"] in after
    finally:
        code, reset = run_json(capsys, "scenario", "reset")
    assert (code, reset["active"], reset["reset"]) == (0, None, name)
    code, report = run_json(capsys, "doctor")
    assert report["ok"] is True and code == 0, report
