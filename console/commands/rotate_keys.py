"""`obo-console rotate-keys [--grace SECONDS]`: rotate the local identity platform's token-signing key.

A new key signs from now on; the old one stays in the JWKS for the grace period, so tokens it signed keep
validating until then. Works against a running stack: the platform re-reads the key file on its next request.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json

from console.commands import settings_overrides
from console.core.settings import load_settings
from mcp_server.errors import UserError
from mcp_server.localcloud.signing_keys import (
    DEFAULT_GRACE_SECONDS,
    KEYS_FILE,
    SigningKeyFileError,
    SigningKeyStore,
    rotate,
)
from mcp_server.paths import localcloud_dir


def run(args: argparse.Namespace) -> int:
    if load_settings(**settings_overrides(args)).mode == "azure":
        raise UserError(
            "rotate-keys rotates the LOCAL identity platform's keys; in Azure mode Entra ID rotates "
            "its own signing keys.",
            hint="Run it in local mode (OBO_CONSOLE_MODE=local).",
        )
    grace = DEFAULT_GRACE_SECONDS if args.grace is None else args.grace
    if grace < 0:
        raise UserError(
            f"--grace must be 0 or more seconds, not {args.grace}.",
            hint="Use e.g. --grace 3600 to keep the old key published for an hour.",
        )
    path = localcloud_dir() / KEYS_FILE
    if not path.exists():
        raise UserError(
            f"No signing keys at {path}: the local identity platform has not run with this data "
            "directory yet.",
            hint="Start it once with `obo-console server` (same --home).",
        )
    try:
        new = rotate(path, grace)
        published = SigningKeyStore(path).published()
    except SigningKeyFileError as exc:
        raise UserError(str(exc)) from exc
    retired = [
        {"kid": k.kid, "dropped_at": _iso(k.drop_after)}
        for k in published
        if k.kid != new.kid and k.drop_after
    ]
    if args.json:
        print(json.dumps({"current_kid": new.kid, "retired": retired, "keys_file": str(path)}))
        return 0
    print(f"New signing key: kid {new.kid} (signs every token from now on).")
    for key in retired:
        print(f"Still published until {key['dropped_at']}: kid {key['kid']}")
    print("A running local stack picks the new key up on its next request.")
    return 0


def _iso(ts: float | None) -> str:
    return dt.datetime.fromtimestamp(ts or 0, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
