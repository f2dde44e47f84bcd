"""Where the token cache lives at rest: the OS keyring, or — explicitly, never by autodetection — a file.

keyring's own autodetection picks keyrings.alt's plaintext file as soon as that package is installed (it is a
dependency here), so it must not be trusted: we look for a *real* viable backend ourselves, excluding keyrings.alt,
the fail/null backends and the chainer (which may wrap keyrings.alt). Without one, local mode uses keyrings.alt's
PlaintextKeyring in the data dir, chosen explicitly and announced with a warning; Azure mode refuses it unless
the user opted in (``allow_file_keyring`` / ``OBO_CONSOLE_ALLOW_FILE_KEYRING=true``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from keyring.backend import KeyringBackend, get_all_keyring
from keyring.core import load_keyring

from console.core.auth.errors import FileKeyringRefused, KeyringUnavailable
from mcp_server.paths import data_dir

FILE_KEYRING_NAME = "keyring-fallback.cfg"
_NOT_REAL = ("keyring.backends.fail", "keyring.backends.null", "keyring.backends.chainer")


@dataclass(frozen=True)
class KeyringChoice:
    backend: KeyringBackend
    description: str
    is_file: bool
    warning: str | None = None


def is_file_backend(backend: KeyringBackend) -> bool:
    module = type(backend).__module__
    return module.startswith("keyrings.alt") or hasattr(backend, "file_path")


def file_keyring_path() -> Path:
    return data_dir() / FILE_KEYRING_NAME


def file_keyring() -> KeyringBackend:
    """keyrings.alt's plaintext store, at a file in the data dir (0600 inside a 0700 dir)."""
    try:
        from keyrings.alt.file import PlaintextKeyring  # deferred: optional; its absence gets a clear error
    except ImportError as exc:
        raise KeyringUnavailable(
            "No OS keyring is available and the file fallback (keyrings.alt) is not installed.",
            hint="Install an OS keyring (e.g. gnome-keyring with Secret Service), or `pip install keyrings.alt`.",
        ) from exc
    backend = PlaintextKeyring()
    backend.file_path = str(file_keyring_path())
    return backend


def real_os_backends() -> list[KeyringBackend]:
    """Viable OS keyrings, best first; never keyrings.alt, fail, null or chainer."""

    real = [
        backend
        for backend in get_all_keyring()
        if not type(backend).__module__.startswith(("keyrings.alt", *_NOT_REAL)) and backend.priority > 0
    ]
    return sorted(real, key=lambda backend: backend.priority, reverse=True)


def _load_named(name: str) -> KeyringBackend:
    try:
        return load_keyring(name)
    except Exception as exc:  # keyring raises RuntimeError/ImportError/AttributeError for a bad name
        raise KeyringUnavailable(
            f"The keyring backend {name!r} cannot be used: {exc}.",
            hint="Set OBO_CONSOLE_KEYRING_BACKEND to `auto`, `file`, or a backend class such as "
            "`keyring.backends.SecretService.Keyring`.",
        ) from exc


def _warning_for_file(path: str) -> str:
    return (
        f"No OS keyring is available: tokens are stored in a plain file ({path}), readable by anyone who can "
        "read your files. Install and unlock an OS keyring (e.g. gnome-keyring/Secret Service) to keep them there."
    )


def choose_keyring(
    *, mode: str, requested: str = "auto", allow_file: bool = False, override: KeyringBackend | None = None
) -> KeyringChoice:
    """Pick the backend for the token cache.

    ``requested``: ``auto`` (a real OS keyring, else the file store where allowed), ``file`` (keyrings.alt's
    file store in the data dir), or a backend class path. ``PYTHON_KEYRING_BACKEND`` counts as a class path.
    ``override`` lets tests (and embedders) inject a backend; it obeys the same Azure-mode rule.
    """
    named = requested if requested not in ("", "auto") else os.environ.get("PYTHON_KEYRING_BACKEND", "")
    if override is not None:
        backend = override
    elif named == "file":
        backend = file_keyring()
    elif named:
        backend = _load_named(named)
    else:
        real = real_os_backends()
        if real:
            backend = real[0]
        elif mode == "azure" and not allow_file:
            raise FileKeyringRefused("no OS keyring is available on this machine")
        else:
            backend = file_keyring()

    if not is_file_backend(backend):
        return KeyringChoice(backend, f"{type(backend).__module__}.{type(backend).__name__}", is_file=False)

    path = str(getattr(backend, "file_path", "a file"))
    if mode == "azure" and not allow_file:
        raise FileKeyringRefused(f"the selected keyring backend {type(backend).__name__} is a file ({path})")
    return KeyringChoice(
        backend,
        f"{type(backend).__name__} file store at {path}",
        is_file=True,
        warning=_warning_for_file(path),
    )
