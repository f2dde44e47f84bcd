"""`obo-console server` (being built: see the issue that owns it)."""

from __future__ import annotations

import argparse

from console.core.errors import UserError


def register(sub: argparse._SubParsersAction, name: str) -> None:
    sub.add_parser(name, help="(not built yet)")


def run(args: argparse.Namespace) -> int:
    raise UserError("`obo-console server` is not built yet.")
