"""`obo-console login [--browser] [--as USER]`: sign in with the device-code flow, or in the system browser
(MSAL's interactive flow: authorization code with PKCE); the token cache goes to the OS keyring either way.

The device-code message and the browser sign-in URL go to stderr. ``--as USER`` (local mode only) completes the
local identity platform's page as that demo user, the way a browser does (GET the form, POST it), and its
multi-factor step when the page asks for one. When the tenant blocks the device-code flow (AADSTS53003) the error
says to run ``obo-console login --browser``. ``--claims CHALLENGE`` signs in with a Conditional Access claims
challenge (the base64url value ``ask`` prints when it exits 4): the page then asks for the second step.
"""

from __future__ import annotations

import argparse
import json
import sys

from console.commands import settings_overrides
from console.core.auth.accounts import SignedInAccount
from console.core.auth.manager import AuthManager
from console.core.settings import load_settings
from mcp_server.errors import UserError


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def warn_if_needed(warning: str | None) -> None:
    if warning:
        say(f"obo-console: warning: {warning}")


def run(args: argparse.Namespace) -> int:
    settings = load_settings(**settings_overrides(args))
    if args.as_user is not None and settings.mode != "local":
        raise UserError(
            "--as works only in local mode (the demo tenant).",
            hint="In Azure mode run `obo-console login` and complete the page in a browser.",
        )
    manager = AuthManager.from_settings(settings)
    warn_if_needed(manager.warning)
    manager.accounts()  # read the token cache first: a locked keyring fails now, not after the sign-in
    claims = _claims(getattr(args, "claims", None))
    if args.browser:
        account = browser_sign_in(manager, args.as_user, claims)
    elif args.as_user is not None:
        user = manager.endpoints.demo_user(args.as_user)
        say(f"Signing in as {user.username} on the local identity platform's device-code page ...")
        account = manager.sign_in_as(user.username, claims_challenge=claims)
        if manager.last_mfa_number is not None:
            say(
                f"The page asked for multi-factor authentication: confirmed number {manager.last_mfa_number:02d}."
            )
    else:
        flow = manager.start_device_flow(claims)
        say(flow.prompt.message.get_secret_value())
        say(
            f"Waiting for the sign-in (the code expires in {flow.prompt.seconds_left() // 60} min; Ctrl+C cancels)."
        )
        account = flow.result()
    others = [a.username for a in manager.accounts() if a.home_account_id != account.home_account_id]
    label = f"{account.name} <{account.username}>" if account.name else account.username
    print(f"Signed in as {label}.")
    if others:
        print(f"Also signed in: {', '.join(others)} (switch with `obo-console whoami --user NAME`).")
    return 0


def browser_sign_in(manager: AuthManager, as_user: str | None, claims: str | None = None) -> SignedInAccount:
    if as_user is not None:
        user = manager.endpoints.demo_user(as_user)
        say(f"Signing in as {user.username} on the local identity platform's browser sign-in page ...")
        return manager.start_browser_flow(as_user=user.username, claims_challenge=claims).result()
    flow = manager.start_browser_flow(
        claims_challenge=claims,
        announce=lambda url: say(
            f"Opening the sign-in page in your browser. If it does not open, visit:\n{url}"
        ),
    )
    say("Waiting for the sign-in in the browser (Ctrl+C cancels).")
    return flow.result()


def _claims(value: str | None) -> str | None:
    """The claims JSON of a ``--claims`` challenge; UserError saying what is wrong with a garbled one."""
    if value is None:
        return None
    from console.core.step_up import ChallengeInvalid, decode_claims_value  # deferred: only with --claims

    try:
        return json.dumps(decode_claims_value(value.strip()), separators=(",", ":"))
    except ChallengeInvalid as exc:
        raise UserError(
            f"The --claims value cannot be used: {exc}.",
            hint="Copy it exactly as `obo-console ask` printed it (one base64url word).",
        ) from None
