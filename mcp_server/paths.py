"""Where per-user files live: platformdirs' data dir, or ``OBO_CONSOLE_HOME`` when set."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP_NAME = "obo-console"


def data_dir() -> Path:
    """The per-user data directory (created 0700 on first use)."""
    home = os.environ.get("OBO_CONSOLE_HOME")
    path = Path(home).expanduser() if home else Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def localcloud_dir() -> Path:
    """Files of the local identity platform and search service (CA, keys, index database)."""
    path = data_dir() / "localcloud"
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def default_state_file() -> Path:
    return data_dir() / "local-stack.json"
