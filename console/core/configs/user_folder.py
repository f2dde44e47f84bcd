"""The per-user configs folder of an installed OBO Console: ``configs/`` in the data directory, copied from the
packaged defaults on first use so people can edit the configs (and live reload sees their edits)."""

from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path

from console.core.configs.file_store import write_atomic

log = logging.getLogger(__name__)

SCHEMA_RELATIVE = Path("schema") / "agent_config.schema.json"


def checkout_configs() -> Path | None:
    """The top-level configs/ folder when this code runs from a source checkout (pyproject.toml beside it)."""
    root = Path(__file__).resolve().parents[3]
    folder = root / "configs"
    return folder if (root / "pyproject.toml").is_file() and folder.is_dir() else None


def ensure_user_configs(target: Path, defaults: Path) -> Path:
    """``target``, created from ``defaults`` when it does not exist yet. An existing folder is the user's: its
    configs are left alone (edited, added or deleted on purpose); only the schema, which is ours, is refreshed."""
    if target.is_dir():
        _refresh_schema(target, defaults)
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    # Copy beside it, then rename in one step: a second process starting at the same time never sees half a
    # folder, and whichever rename loses simply uses the winner's copy.
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        for source in sorted(defaults.glob("*.json")):
            shutil.copyfile(source, staging / source.name)
        (staging / SCHEMA_RELATIVE.parent).mkdir()
        shutil.copyfile(defaults / SCHEMA_RELATIVE, staging / SCHEMA_RELATIVE)
        staging.chmod(0o755)
        staging.rename(target)
        log.info("copied the default agent configs to %s", target)
    except OSError:
        if not target.is_dir():
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _refresh_schema(target: Path, defaults: Path) -> None:
    shipped = (defaults / SCHEMA_RELATIVE).read_bytes()
    copy = target / SCHEMA_RELATIVE
    try:
        if copy.read_bytes() == shipped:
            return
    except FileNotFoundError:
        copy.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(copy, shipped)
