"""The step-up: a turn stopped by a Conditional Access claims challenge signs in again with the claims and runs
once more (docs/console-core.md, Step-up).

``run_step_up`` publishes ``StepUp`` events (required → signing in → done / failed, with the sign-in's
``amr``/``acrs`` before and after), calls the sign-in (``StepUpSignIn``: blocking, run in a thread), makes the
MCP connection fetch the new token, and retries the turn once. ``demo_step_up`` is the local-mode sign-in: the
device flow with MSAL's ``claims_challenge``, its page completed as the same demo user, the multi-factor step
included (the page shows a number, the shortcut confirms it, and the events say so).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from console.core.events import EventBus, StepUp, StepUpStatus
from console.core.step_up import ClaimsChallenge
from mcp_server.errors import UserError

if TYPE_CHECKING:
    from console.core.agents.runner import AgentRunner, TurnResult
    from console.core.auth.accounts import SignedInAccount
    from console.core.auth.manager import AuthManager


@dataclass(frozen=True)
class StepUpDone:
    claims: dict[str, Any]  # the new access token's claims (never the token)
    how: str  # how the challenge was satisfied, in words


# (account, challenge) -> the new sign-in; UserError (with what to do) when it cannot be satisfied here.
StepUpSignIn = Callable[["SignedInAccount", ClaimsChallenge], StepUpDone]


def login_command(login: str, challenge: ClaimsChallenge, *, local: bool) -> str:
    """The command that satisfies ``challenge`` for ``login`` from a shell."""
    who = f" --as {login}" if local else ""
    return f"obo-console login{who} --claims {challenge.encoded}"


def demo_step_up(auth: AuthManager, local: bool) -> StepUpSignIn:
    """The local-mode step-up: sign in again as the same demo user with the claims, MFA step included."""

    def sign_in(account: SignedInAccount, challenge: ClaimsChallenge) -> StepUpDone:
        login = account.username.split("@", 1)[0]
        if not local:
            raise UserError(
                f"{account.username} must sign in again with {challenge.required}.",
                hint=f"Run `{login_command(login, challenge, local=False)}` and complete the page in a browser, "
                "then ask again.",
            )
        signed_in = auth.sign_in_as(account.username, claims_challenge=challenge.claims)
        number = auth.last_mfa_number
        claims = auth.acquire_token(signed_in).claims()
        how = (
            f"the sign-in shortcut signed in as {login} and confirmed number {number:02d} on the page's "
            "multi-factor step"
            if number is not None
            else f"the sign-in shortcut signed in as {login} (the page asked for no second step)"
        )
        return StepUpDone(claims, how)

    return sign_in


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value] if isinstance(value, list | tuple) else []


async def run_step_up(
    *,
    bus: EventBus,
    account: SignedInAccount,
    claims_before: dict[str, Any] | None,
    sign_in: StepUpSignIn | None,
    runner: AgentRunner,
    text: str,
    result: TurnResult,
) -> tuple[TurnResult, dict[str, Any] | None]:
    """Step up after ``result`` (which carries the challenge) and run the turn once more. Returns the turn's
    final result and the new token's claims (None when the step-up failed)."""
    challenge = result.step_up
    assert challenge is not None
    before = claims_before or {}
    base: dict[str, Any] = {
        "turn_id": result.turn_id,
        "account": account.username,
        "policy": challenge.policy,
        "resource": challenge.resource,
        "required": challenge.required,
        "claims": challenge.claims,
        "aadsts": challenge.aadsts,
        "amr_before": _strings(before.get("amr")),
        "acrs_before": _strings(before.get("acrs")),
    }
    bus.publish(StepUp(status=StepUpStatus.REQUIRED, **base))
    if sign_in is None:
        return result, None
    bus.publish(StepUp(status=StepUpStatus.SIGNING_IN, **base))
    try:
        done = await asyncio.to_thread(sign_in, account, challenge)
    except UserError as exc:
        hint = f"{exc.message} {exc.hint}" if exc.hint else exc.message
        bus.publish(StepUp(status=StepUpStatus.FAILED, hint=hint, **base))
        return result, None
    bus.publish(
        StepUp(
            status=StepUpStatus.DONE,
            amr_after=_strings(done.claims.get("amr")),
            acrs_after=_strings(done.claims.get("acrs")),
            how=done.how,
            **base,
        )
    )
    runner.mcp.forget_token()  # the next MCP request carries the new token
    return await runner.run_turn(text, retry_of=result.turn_id), done.claims
