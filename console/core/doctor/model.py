"""The doctor's vocabulary: a check's result, what checks learn and pass on, and the runner that walks them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from console.core.settings import Settings
from mcp_server import aadsts


class CheckFailed(Exception):
    """A check found a broken link: ``detail`` says what it found, ``fix`` what to do (portal words)."""

    def __init__(self, detail: str, fix: str) -> None:
        super().__init__(detail)
        self.detail = detail
        self.fix = fix


def failed_with_code(detail: str, code: str | None, fallback_fix: str) -> CheckFailed:
    """A failure carrying an AADSTS code: the table's meaning and fix (docs/aadsts.md)."""
    entry = aadsts.lookup(code)
    if entry is None:
        return CheckFailed(detail, fallback_fix)
    # The server's cause may already be the table's meaning (mcp_server/aadsts.py serves both): say it once.
    said = f"({entry.label})" if entry.meaning in detail else f"({entry.label}: {entry.meaning})"
    return CheckFailed(f"{detail} {said}", entry.fix)


@dataclass
class Target:
    """What the checks run against, from the state file (local) or settings (Azure). Secrets stay masked."""

    mode: str
    authority: str
    tenant_id: str
    console_client_id: str
    api_scope: str
    api_client_id: str | None
    mcp_url: str | None
    ca_cert: Path | None
    search_endpoint: str | None
    search_index: str | None
    search_api_key: SecretStr | None = field(default=None, repr=False)

    @property
    def verify(self) -> str | bool:
        """requests/httpx ``verify``: exactly the local CA in local mode, the system's trust otherwise."""
        return str(self.ca_cert) if self.ca_cert is not None else True


@dataclass
class Findings:
    """What earlier checks learned that later ones use (never a token in anything printed)."""

    discovery: dict[str, Any] = field(default_factory=dict)
    jwks_kids: set[str] = field(default_factory=set)
    token: SecretStr | None = field(default=None, repr=False)
    claims: dict[str, Any] = field(default_factory=dict)
    obo_claims: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CheckResult:
    id: str
    ok: bool | None  # None: skipped
    detail: str
    fix: str | None = None

    @property
    def skipped(self) -> bool:
        return self.ok is None

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "ok": self.ok, "skipped": self.skipped, "detail": self.detail, "fix": self.fix}


@dataclass
class Doctor:
    settings: Settings
    target: Target
    token_source: Callable[[], tuple[SecretStr, dict[str, Any]]]  # the signed-in user's token and its claims
    found: Findings = field(default_factory=Findings)


Run = Callable[[Doctor], str]  # returns what it found; raises CheckFailed


@dataclass(frozen=True)
class Check:
    id: str
    title: str
    run: Run
    needs: tuple[str, ...] = ()  # checks that must pass first (else this one cannot run)
    applies: Callable[[Doctor], bool] = lambda _doctor: True


def walk(doctor: Doctor, checks: list[Check]) -> list[CheckResult]:
    """Run ``checks`` in order; one whose prerequisite did not pass is skipped, saying which and why."""
    results: dict[str, CheckResult] = {}
    for check in checks:
        if not check.applies(doctor):
            continue
        blocked = next((n for n in check.needs if n in results and not results[n].ok), None)
        if blocked is not None:
            why = "failed" if results[blocked].ok is False else "was skipped"
            results[check.id] = CheckResult(check.id, None, f"skipped: needs '{blocked}', which {why}")
            continue
        try:
            results[check.id] = CheckResult(check.id, True, check.run(doctor))
        except CheckFailed as exc:
            results[check.id] = CheckResult(check.id, False, exc.detail, exc.fix)
    return list(results.values())
