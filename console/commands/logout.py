"""`obo-console logout [--all | USERNAME]`: remove accounts and their tokens from the keyring cache.

Works while the local stack is down: it only touches the token cache.
"""

from __future__ import annotations

import argparse

from console.commands import settings_overrides
from console.commands.login import warn_if_needed
from console.core.auth.manager import AuthManager, TokenStore
from console.core.endpoints import resolve_endpoints
from console.core.errors import NotSignedIn
from console.core.plural import plural
from console.core.settings import load_settings
from mcp_server.errors import UserError


def _current_login(tokens: TokenStore) -> str:
    try:
        manager = AuthManager(resolve_endpoints(tokens.settings), tokens=tokens)
        account = manager.current_account()
        if account is not None:
            return account.username
    except UserError:
        pass  # stack down or Azure settings missing: fall back to the cache alone
    everyone = tokens.accounts()
    if len(everyone) == 1:
        return everyone[0].username
    if not everyone:
        raise NotSignedIn("Nobody is signed in.")
    names = ", ".join(a.username for a in everyone)
    raise UserError(
        f"Several accounts are signed in ({names}).", hint="Name one (`logout alice`) or use --all."
    )


def run(args: argparse.Namespace) -> int:
    tokens = TokenStore(load_settings(**settings_overrides(args)))
    warn_if_needed(tokens.warning)
    if args.all:
        gone = tokens.sign_out_all()
        print(
            f"Signed out {plural(len(gone), 'account')}; the token cache is empty."
            if gone
            else "Nobody was signed in."
        )
        return 0
    login = args.username or _current_login(tokens)
    gone = tokens.sign_out(login)
    print("Signed out " + ", ".join(a.username for a in gone) + ".")
    remaining = tokens.accounts()
    if remaining:
        print("Still signed in: " + ", ".join(a.username for a in remaining) + ".")
    return 0
