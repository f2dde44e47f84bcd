"""Where per-user files live: the CLI's ``--home`` while a command runs, else ``OBO_CONSOLE_HOME`` when set, else
platformdirs' data dir."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import platformdirs

APP_NAME = "obo-console"

_home: Path | None = None  # the CLI's --home, set only by use_home()


@contextmanager
def use_home(home: Path | None) -> Iterator[None]:
    """While the block runs (a whole CLI command, threads included), ``data_dir()`` is ``home`` when given.
    The environment is left alone: a child process gets the data dir explicitly (see ``server_link``)."""
    global _home
    previous = _home
    if home is not None:
        _home = home
    try:
        yield
    finally:
        _home = previous


def data_dir() -> Path:
    """The per-user data directory (created 0700 on first use)."""
    home = _home or os.environ.get("OBO_CONSOLE_HOME")
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
