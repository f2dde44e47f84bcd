"""``doctor``: the chain's checks in order (docs/doctor.md), against the configured mode."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import SecretStr

from console.core.doctor import identity_checks, mcp_checks, redis_checks, search_checks
from console.core.doctor.model import CheckResult, Doctor, Target, walk
from console.core.endpoints import resolve_endpoints
from console.core.settings import Settings
from mcp_server.errors import UserError
from mcp_server.stack_state import read_state

TokenSource = Callable[[], tuple[SecretStr, dict[str, Any]]]

CHECKS = [*identity_checks.CHECKS, *mcp_checks.CHECKS, *search_checks.CHECKS, *redis_checks.CHECKS]
CHECK_IDS = ("settings", *(c.id for c in CHECKS))


def target_of(settings: Settings) -> Target:
    """Where the chain is: the running local stack's state file, or the Azure settings (UserError if neither)."""
    endpoints = resolve_endpoints(settings)
    if settings.mode == "local":
        state = read_state(endpoints.state_file)
        assert state is not None  # resolve_endpoints checked it
        endpoint, index, key = state.search_endpoint, state.search_index, state.search_api_key
    else:
        endpoint, index, key = settings.search_endpoint, settings.search_index, settings.search_api_key
    return Target(
        mode=settings.mode,
        authority=endpoints.authority,
        tenant_id=endpoints.tenant_id,
        console_client_id=endpoints.console_client_id,
        api_scope=endpoints.api_scope,
        api_client_id=endpoints.api_client_id,
        mcp_url=endpoints.mcp_url,
        ca_cert=endpoints.ca_cert,
        search_endpoint=endpoint,
        search_index=index,
        search_api_key=key,
    )


def run_doctor(settings: Settings, token_source: TokenSource) -> list[CheckResult]:
    """Every check in order. Without a usable target (no running local stack, Azure settings missing) the first
    check, ``settings``, fails and says what to do; nothing else can run."""
    try:
        target = target_of(settings)
    except UserError as exc:
        fix = exc.hint or "Fix the settings (docs/server.md, Azure mode settings)."
        skipped = [CheckResult(c.id, None, "skipped: needs 'settings', which failed") for c in CHECKS]
        return [CheckResult("settings", False, exc.message, fix), *skipped]
    settings_ok = CheckResult("settings", True, f"{settings.mode} mode: {target.authority}, {target.mcp_url}")
    return [settings_ok, *walk(Doctor(settings, target, token_source), CHECKS)]


def report(results: list[CheckResult]) -> dict[str, Any]:
    """``{"ok", "checks": [{"id", "ok", "skipped", "detail", "fix"}]}``: ok only when every check ran and passed."""
    return {"ok": all(r.ok is True for r in results), "checks": [r.as_dict() for r in results]}
