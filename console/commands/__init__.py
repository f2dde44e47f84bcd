"""One module per CLI sub-command; each exposes ``register(subparsers)`` and ``run(args) -> int``."""

from __future__ import annotations

import argparse
from typing import Any


def settings_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The global flags that are settings, as ``load_settings(**...)`` overrides; a flag not given is None, so the
    environment and ``.env`` decide. (``--home`` is applied by ``console.cli.main`` around the whole command.)"""
    return {"mode": getattr(args, "mode", None), "state_file": getattr(args, "state_file", None)}
