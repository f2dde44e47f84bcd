"""`obo-console logout [--all | USERNAME]`: remove accounts and their tokens from the keyring cache.

Works while the local stack is down: it only touches the token cache.
"""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction, name: str) -> None:
    parser = sub.add_parser(
        name,
        help="sign out (the current account, USERNAME, or --all)",
        description="Remove signed-in accounts and all their tokens from the keyring. Without arguments: the "
        "current account.",
    )
    target = parser.add_mutually_exclusive_group()
    target.add_argument("username", nargs="?", help="the account to sign out (username or the part before @)")
    target.add_argument("--all", action="store_true", help="sign out every account and wipe the token cache")


def _current_login(tokens: object) -> str:
    from console.core.auth.manager import AuthManager, TokenStore
    from console.core.endpoints import resolve_endpoints
    from console.core.errors import NotSignedIn
    from mcp_server.errors import UserError

    assert isinstance(tokens, TokenStore)
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
    raise UserError(f"Several accounts are signed in ({names}).", hint="Name one (`logout alice`) or use --all.")


def run(args: argparse.Namespace) -> int:
    from console.commands import settings_overrides
    from console.commands.login import warn_if_needed
    from console.core.auth.manager import TokenStore
    from console.core.plural import plural
    from console.core.settings import load_settings

    tokens = TokenStore(load_settings(**settings_overrides(args)))
    warn_if_needed(tokens.warning)
    if args.all:
        gone = tokens.sign_out_all()
        print(f"Signed out {plural(len(gone), 'account')}; the token cache is empty." if gone else "Nobody was signed in.")
        return 0
    login = args.username or _current_login(tokens)
    gone = tokens.sign_out(login)
    print("Signed out " + ", ".join(a.username for a in gone) + ".")
    remaining = tokens.accounts()
    if remaining:
        print("Still signed in: " + ", ".join(a.username for a in remaining) + ".")
    return 0
