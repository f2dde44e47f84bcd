"""The step-up: a turn stopped by a Conditional Access claims challenge signs in again with the claims and runs
once more (docs/console-core.md, Step-up).

``run_step_up`` publishes ``StepUp`` events (required → signing in → done / failed, with the sign-in's
``amr``/``acrs`` before and after), calls the sign-in (``StepUpSignIn``: blocking, run in a thread), makes the
MCP connection fetch the new token, and retries the turn once. ``step_up_sign_in`` picks the sign-in:

- local mode, a demo user: ``demo_step_up``, the device flow with MSAL's ``claims_challenge``, its page completed
  as the same demo user, the multi-factor step included (the page shows a number, the shortcut confirms it);
- otherwise (Azure mode, or an account the shortcut does not know): ``browser_step_up``, MSAL's interactive flow
  (system browser, PKCE, loopback) with the claims and the account as ``login_hint``; the person completes the
  page, MFA included. The events say so and carry the page's URL (``StepUpProgress.page_opened``).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
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

IN_BROWSER = "complete the sign-in in your browser"
CANCELLED = "The step-up sign-in was cancelled in the console."


@dataclass(frozen=True)
class StepUpDone:
    claims: dict[str, Any]  # the new access token's claims (never the token)
    how: str  # how the challenge was satisfied, in words


class StepUpProgress:
    """Between a running sign-in (its thread) and ``run_step_up``: the page the person must complete, and how to
    stop the sign-in when the turn is cancelled."""

    def __init__(self, on_page: Callable[[str], None]) -> None:
        self._on_page = on_page
        self._lock = threading.Lock()
        self._stop: Callable[[], None] | None = None
        self.cancelled = False

    def page_opened(self, url: str) -> None:
        self._on_page(url)

    def on_cancel(self, stop: Callable[[], None]) -> None:
        """``stop`` ends the sign-in's wait (called at once if the turn was cancelled already)."""
        with self._lock:
            self._stop = stop
            cancelled = self.cancelled
        if cancelled:
            stop()

    def cancel(self) -> None:
        with self._lock:
            self.cancelled = True
            stop = self._stop
        if stop is not None:
            stop()


# (account, challenge, progress) -> the new sign-in; UserError (with what to do) when it cannot be satisfied here.
StepUpSignIn = Callable[["SignedInAccount", ClaimsChallenge, StepUpProgress], StepUpDone]


def login_command(login: str, challenge: ClaimsChallenge, *, local: bool, browser: bool = False) -> str:
    """The command that satisfies ``challenge`` for ``login`` from a shell."""
    who = f" --as {login}" if local and not browser else ""
    how = " --browser" if browser else ""
    return f"obo-console login{how}{who} --claims {challenge.encoded}"


def browser_hint(challenge: ClaimsChallenge) -> str:
    """What to do when an interactive step-up did not succeed: the same sign-in, from a shell."""
    command = login_command("", challenge, local=False, browser=True)
    return f"Run `{command}` and complete the page in the browser, then ask again."


def step_up_sign_in(auth: AuthManager, *, timeout: int | None = None) -> StepUpSignIn:
    """The shortcut for a demo user in local mode; the browser (a person completes the page) otherwise."""
    demo, browser = demo_step_up(auth), browser_step_up(auth, timeout=timeout)

    def sign_in(account: SignedInAccount, challenge: ClaimsChallenge, progress: StepUpProgress) -> StepUpDone:
        login = account.username.lower()
        if auth.endpoints.mode == "local" and any(u.username.lower() == login for u in auth.endpoints.users):
            return demo(account, challenge, progress)
        return browser(account, challenge, progress)

    return sign_in


def demo_step_up(auth: AuthManager) -> StepUpSignIn:
    """The local-mode step-up: sign in again as the same demo user with the claims, MFA step included."""

    def sign_in(account: SignedInAccount, challenge: ClaimsChallenge, progress: StepUpProgress) -> StepUpDone:
        login = account.username.split("@", 1)[0]
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


def browser_step_up(auth: AuthManager, *, timeout: int | None = None) -> StepUpSignIn:
    """Sign the same account in again in the system browser with the claims (the person does the MFA step)."""

    def sign_in(account: SignedInAccount, challenge: ClaimsChallenge, progress: StepUpProgress) -> StepUpDone:
        from console.core.auth.browser_flow import DEFAULT_TIMEOUT  # deferred: msal, only when a step-up runs

        hint = browser_hint(challenge)
        flow = auth.start_browser_flow(
            login_hint=account.username,
            claims_challenge=challenge.claims,
            announce=progress.page_opened,
            timeout=timeout or DEFAULT_TIMEOUT,
        )
        progress.on_cancel(flow.cancel)
        try:
            signed_in = flow.result()
        except UserError as exc:  # declined, timed out, refused, cancelled: one attempt, then the command
            raise UserError(CANCELLED if progress.cancelled else exc.message, hint=hint) from None
        if signed_in.home_account_id != account.home_account_id:  # someone else signed in on the page
            auth.switch_account(account.username)  # the console's account stays current
            raise UserError(f"The browser signed in {signed_in.username}, not {account.username}.", hint=hint)
        return StepUpDone(auth.acquire_token(signed_in).claims(), "signed in again in the browser")

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
    loop = asyncio.get_running_loop()

    def page_opened(url: str) -> None:  # MSAL's thread: publish on the loop, in order with the other events
        step = StepUp(status=StepUpStatus.SIGNING_IN, how=IN_BROWSER, url=url, **base)
        with contextlib.suppress(RuntimeError):  # the loop closed (console exiting): nobody left to tell
            loop.call_soon_threadsafe(bus.publish, step)

    progress = StepUpProgress(page_opened)
    try:
        done = await asyncio.to_thread(sign_in, account, challenge, progress)
    except UserError as exc:
        hint = f"{exc.message} {exc.hint}" if exc.hint else exc.message
        bus.publish(StepUp(status=StepUpStatus.FAILED, hint=hint, **base))
        return result, None
    except asyncio.CancelledError:  # the turn was stopped: stop waiting for the browser too
        progress.cancel()
        bus.publish(StepUp(status=StepUpStatus.FAILED, hint=f"{CANCELLED} {browser_hint(challenge)}", **base))
        raise
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
