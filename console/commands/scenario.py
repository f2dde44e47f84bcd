"""`obo-console scenario list | apply NAME | reset [--json]`: switch the running local stack into a named
misconfiguration and back, live (docs/scenarios.md). Local mode only."""

from __future__ import annotations

import argparse
import json

from console.commands import settings_overrides
from console.core.scenario_client import ScenarioClient, ScenarioStatus
from console.core.settings import load_settings


def run(args: argparse.Namespace) -> int:
    client = ScenarioClient.from_settings(load_settings(**settings_overrides(args)))
    action = args.scenario_action
    if action == "apply":
        status = client.apply(args.name)
    elif action == "reset":
        status = client.reset()
    else:
        status = client.status()
    if args.json:
        print(json.dumps(_document(status)))
        return 0
    _print(action, status)
    return 0


def _document(status: ScenarioStatus) -> dict[str, object]:
    return {
        "active": status.active,
        "reset": status.reset,
        "scenarios": [
            {"name": s.name, "title": s.title, "check": s.check, "where": s.where} for s in status.scenarios
        ],
    }


def _print(action: str, status: ScenarioStatus) -> None:
    if action == "apply":
        chosen = next(s for s in status.scenarios if s.name == status.active)
        print(f"Applied {chosen.name}: {chosen.title}.")
        print(
            f"The console shows it at {chosen.where}; `obo-console doctor` names the check '{chosen.check}'."
        )
        print("Undo with `obo-console scenario reset`.")
        return
    if action == "reset":
        print(f"Reset {status.reset}: everything is back." if status.reset else "No scenario was active.")
        return
    width = max(len(s.name) for s in status.scenarios)
    for s in status.scenarios:
        mark = "*" if s.name == status.active else " "
        print(f"{mark} {s.name.ljust(width)}  {s.title}")
    print("\n* active" if status.active else "\nNo scenario is active.")
