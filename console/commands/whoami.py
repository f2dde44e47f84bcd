"""`obo-console whoami [--json] [--user NAME]`: the signed-in account and its access token's decoded claims.

Silent sign-in from the keyring cache (MSAL refreshes when needed). Shows claims with a one-line meaning each and
the expiry countdown; never the token itself. ``--json`` prints exactly one JSON document on stdout.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from console.commands import settings_overrides
from console.commands.login import warn_if_needed
from console.core.auth.manager import AuthManager
from console.core.claims import claim_meaning, display_value, expiry_countdown, format_timestamp
from console.core.settings import load_settings


def whoami_document(manager: AuthManager, user: str | None) -> dict[str, Any]:
    account = manager.switch_account(user) if user else manager.require_account()
    token = manager.acquire_token(account)
    claims = token.claims()
    return {
        "account": account.as_dict(),
        "mode": manager.endpoints.mode,
        "authority": manager.endpoints.authority,
        "scope": manager.endpoints.api_scope,
        "token": {
            "source": token.source,
            "expires_on": format_timestamp(token.expires_on),
            "expires_in_seconds": token.seconds_left(),
            "expiry": expiry_countdown(claims),
            "header": token.header(),
            "claims": claims,
            "meanings": {name: claim_meaning(name) for name in claims},
        },
        "accounts": [a.username for a in manager.accounts()],
        "keyring": manager.tokens.description,
        "identity_platform": {
            "reachable": manager.identity_unreachable is None,
            "detail": manager.identity_unreachable,
        },
    }


def offline_warning(manager: AuthManager, expires_on: str) -> str | None:
    """What to tell the person when the identity platform was unreachable and the cached token is used."""
    if manager.identity_unreachable is None:
        return None
    return f"{manager.identity_unreachable}; working from the cached token until it expires ({expires_on})."


def _print_text(doc: dict[str, Any]) -> None:
    account, token = doc["account"], doc["token"]
    label = f"{account['name']} <{account['username']}>" if account["name"] else account["username"]
    print(f"Signed in as {label} ({doc['mode']} mode, {doc['authority']})")
    source = "from the token cache" if token["source"] == "cache" else "just issued by the identity platform"
    print(f"Access token for {doc['scope']}: {token['expiry']} (at {token['expires_on']}), {source}.")
    others = [u for u in doc["accounts"] if u != account["username"]]
    if others:
        print(f"Other signed-in accounts: {', '.join(others)}")
    print(f"Signed with {token['header'].get('alg', '?')} key {token['header'].get('kid', '?')}. Claims:")
    width = max((len(name) for name in token["claims"]), default=0)
    for name, value in token["claims"].items():
        print(f"  {name.ljust(width)}  {display_value(name, value)}")
        meaning = token["meanings"].get(name)
        if meaning:
            print(f"  {' ' * width}  └ {meaning}")


def run(args: argparse.Namespace) -> int:
    manager = AuthManager.from_settings(load_settings(**settings_overrides(args)))
    warn_if_needed(manager.warning)
    started = time.perf_counter()
    doc = whoami_document(manager, args.user)
    doc["elapsed_ms"] = round((time.perf_counter() - started) * 1000, 1)
    warn_if_needed(offline_warning(manager, doc["token"]["expires_on"]))
    if args.json:
        print(json.dumps(doc, indent=2))
    else:
        _print_text(doc)
    return 0
