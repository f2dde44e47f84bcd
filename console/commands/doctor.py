"""`obo-console doctor [--json] [--user NAME]`: walk the chain in order and say how to fix what is broken.

One line per check (✓ / ✗ / – skipped) with what it found and, for each ✗, the fix in the portal's words.
``--json`` prints ``{"ok", "checks": [{"id", "ok", "skipped", "detail", "fix"}]}``. Exit 0 only when all pass.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from pydantic import SecretStr

from console.commands import settings_overrides
from console.core.auth.manager import AuthManager
from console.core.doctor.model import CheckResult
from console.core.doctor.runner import report, run_doctor
from console.core.settings import load_settings


def run(args: argparse.Namespace) -> int:
    settings = load_settings(**settings_overrides(args))
    managers: list[AuthManager] = []

    def token_source() -> tuple[SecretStr, dict[str, Any]]:
        manager = AuthManager.from_settings(settings)
        managers.append(manager)
        account = manager.switch_account(args.user) if args.user else manager.require_account()
        token = manager.acquire_token(account)
        return token.token, token.claims()

    try:
        results = run_doctor(settings, token_source)
    finally:
        for manager in managers:
            manager.close()
    document = report(results)
    if args.json:
        print(json.dumps(document))
    else:
        _print(results)
    return 0 if document["ok"] else 1


def _print(results: list[CheckResult]) -> None:
    for result in results:
        mark = "–" if result.skipped else ("✓" if result.ok else "✗")
        print(f"{mark} {result.id}: {result.detail}")
        if result.ok is False and result.fix:
            print(f"    fix: {result.fix}")
    failed = [r.id for r in results if r.ok is False]
    skipped = [r.id for r in results if r.skipped]
    if failed:
        tail = f"; {len(skipped)} skipped because of it ({', '.join(skipped)})" if skipped else ""
        print(f"\nBroken: {', '.join(failed)}{tail}.")
    else:
        print("\nEvery link of the chain works.")
