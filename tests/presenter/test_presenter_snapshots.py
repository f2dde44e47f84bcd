"""Snapshot tests (pytest-textual-snapshot) of the presenter view with fixed data: success, cache hit and each
failure on a 160×45 terminal, and success and a failure on 100×30. Update the baselines with
`pytest tests/presenter --snapshot-update` after a deliberate change (and look at them)."""

from __future__ import annotations

import pytest

from tests.presenter import scenarios as sc
from tests.presenter.host import PresenterHost, ScenarioWorkspace


async def _settle(pilot) -> None:  # a textual Pilot
    await pilot.pause()
    await pilot.pause()


@pytest.mark.parametrize(
    "name",
    ["success", "cache_hit", "invalid_token", "wrong_client_secret", "consent_missing", "search_outage"],
)
def test_presenter_160x45(snap_compare, name: str) -> None:
    app = PresenterHost(ScenarioWorkspace(), sc.SCENARIOS[name]())
    assert snap_compare(app, terminal_size=(160, 45), run_before=_settle)


@pytest.mark.parametrize("name", ["success", "wrong_client_secret"])
def test_presenter_100x30(snap_compare, name: str) -> None:
    app = PresenterHost(ScenarioWorkspace(), sc.SCENARIOS[name]())
    assert snap_compare(app, terminal_size=(100, 30), run_before=_settle)


def test_presenter_before_any_question(snap_compare) -> None:
    app = PresenterHost(ScenarioWorkspace(), sc.sign_in())
    assert snap_compare(app, terminal_size=(100, 30), run_before=_settle)
