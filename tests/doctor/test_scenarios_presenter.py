"""The console shows each scenario's break where it happens: a real turn (offline model) against the scenario
stack, its real events shown in the presenter view (Pilot): the step in red, the meaning and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from console.cli import main
from console.core.auth.manager import AuthManager
from console.core.events import Event
from console.core.flow import search_fix
from console.core.settings import Settings
from console.ui.widgets.flow_steps import StepCard
from mcp_server import aadsts
from tests.agents.helpers import agent, write_configs
from tests.doctor.conftest import ScenarioStack
from tests.presenter.host import PresenterHost, ScenarioWorkspace
from tests.presenter.screen_text import screen_text
from tests.presenter.test_flow_stack import events_of_a_turn
from tests.ui.helpers import until

CARDS = ["sign_in", "token", "validation", "obo", "search"]

# scenario -> (the step that turns red, words of its reason, its fix)
BREAKS = {
    "consent-missing": ("obo", "AADSTS65001: " + aadsts.AADSTS[65001].meaning, aadsts.AADSTS[65001].fix),
    "wrong-secret": ("obo", "AADSTS7000215: " + aadsts.AADSTS[7000215].meaning, aadsts.AADSTS[7000215].fix),
    "expired-secret": ("obo", "AADSTS7000222: " + aadsts.AADSTS[7000222].meaning, aadsts.AADSTS[7000222].fix),
    "conditional-access-mfa": (
        "obo",
        "AADSTS50076: " + aadsts.AADSTS[50076].meaning,
        aadsts.AADSTS[50076].fix,
    ),
    "signing-key-rotated": ("validation", "HTTP 401: the MCP server rejected the user's token", None),
    "search-key-rotated": ("search", "HTTP 403", search_fix("HTTP 403")),
    "index-without-permissions": (
        "search",
        "no document-level access",
        search_fix("no document-level access"),
    ),
    "search-down": ("search", "unreachable", search_fix("unreachable")),
    "clock-skew": ("search", "not yet valid", search_fix("HTTP 401")),
}


async def _turn_events(settings: Settings) -> list[Event]:
    with AuthManager.from_settings(settings) as manager:
        token = manager.acquire_token().token.get_secret_value()
    events, _ = await events_of_a_turn(settings, token)
    return events


@pytest.mark.parametrize("name", list(BREAKS))
async def test_presenter_shows_the_break_in_red_with_meaning_and_fix(
    name: str, scenario_stack: ScenarioStack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = Settings(
        configs_dir=write_configs(
            tmp_path / "configs", {"library": agent("Library Agent", mcp_servers=["documents"])}
        )
    )
    assert main(["scenario", "apply", name]) == 0
    try:
        events = await _turn_events(settings)
    finally:
        assert main(["scenario", "reset"]) == 0
    capsys.readouterr()
    step, reason, fix = BREAKS[name]
    workspace = ScenarioWorkspace()
    app = PresenterHost(workspace, before=events)
    async with app.run_test(size=(160, 45)) as pilot:
        await until(pilot, lambda: any("-failed" in card.classes for card in app.screen.query(StepCard)))
        classes = [next(c for c in card.classes if c.startswith("-")) for card in app.screen.query(StepCard)]
        assert classes[CARDS.index(step)] == "-failed", classes
        assert classes[CARDS.index(step) + 1 :] == ["-pending"] * (4 - CARDS.index(step))
        text = " ".join(screen_text(app).split())
        assert " ".join(reason.split())[:60] in text, text
        if fix:
            assert " ".join(fix.split())[:60] in text, text
