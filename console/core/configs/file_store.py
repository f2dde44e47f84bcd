"""Configs as ``<dir>/<key>.json`` files, reloaded live with watchfiles.

Only ``*.json`` directly in the folder are agent configs (the schema sits in ``schema/``; editors' and our own
temporary files start with a dot and are ignored). A change re-reads only the files it names.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import Any

from console.core.configs.catalog import RawConfig
from console.core.configs.model import file_source
from console.core.configs.store import ReconcilingStore
from console.core.configs.validation import ValidationContext, is_json_schema
from mcp_server.errors import UserError

log = logging.getLogger(__name__)


def is_config_file(path: Path) -> bool:
    return path.suffix == ".json" and not path.name.startswith(".")


def write_atomic(path: Path, text: str | bytes) -> None:
    """Replace ``path`` in one step, so the watcher (and anyone reading) never sees half a config."""
    data = text.encode() if isinstance(text, str) else text
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class FileStore(ReconcilingStore):
    """Agent configs in a folder. ``step_ms`` is how long the watcher waits for more changes before
    reloading (an editor's save is often several writes); ``debounce_ms`` caps the wait."""

    def __init__(
        self, directory: Path, ctx: ValidationContext, *, step_ms: int = 30, debounce_ms: int = 400
    ) -> None:
        self.directory = Path(directory).resolve()
        self.backend = f"files:{self.directory}"
        super().__init__(ctx)
        self.step_ms = step_ms
        self.debounce_ms = debounce_ms

    def _check_dir(self) -> None:
        if not self.directory.is_dir():
            raise UserError(
                f"The configs folder {self.directory} does not exist.",
                hint="Create it, or point OBO_CONSOLE_CONFIGS_DIR at the folder holding your agent configs.",
            )

    def _read_file(self, path: Path) -> RawConfig | None:
        """The file as a config source; None when it is gone or is a JSON Schema (not an agent config)."""
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        return None if is_json_schema(data) else RawConfig(path.stem, file_source(path), data)

    def _read_all(self) -> dict[str, RawConfig]:
        self._check_dir()
        raw: dict[str, RawConfig] = {}
        for path in sorted(self.directory.iterdir()):
            if is_config_file(path) and path.is_file():
                item = self._read_file(path)
                if item is not None:
                    raw[item.key] = item
        return raw

    def _source_for(self, key: str) -> str:
        return file_source(self.directory / f"{key}.json")

    def _write(self, key: str, text: str | bytes) -> RawConfig:
        path = self.directory / f"{key}.json"
        write_atomic(path, text)
        return RawConfig(key, file_source(path), text)

    def _remove(self, key: str) -> None:
        (self.directory / f"{key}.json").unlink(missing_ok=True)

    # -- live reload ---------------------------------------------------------------------------------------
    def _start_watching(self) -> None:
        self._check_dir()
        self._start_watcher("configs-file-watcher")

    def _watch_loop(self) -> None:
        # RustNotify (what watchfiles.watch() wraps) registers the OS watch when constructed, so readiness is
        # exact: after it, no change can be missed. watch() itself only registers on its first iteration.
        from watchfiles._rust_notify import RustNotify

        while not self._stop.is_set():
            if not self.directory.is_dir():  # removed (e.g. a branch switch): wait for it to come back
                self._ready.set()
                self._stop.wait(0.5)
                continue
            try:
                with RustNotify([str(self.directory)], False, False, 300, False, False) as notify:
                    self._ready.set()
                    self._safe_apply_all()  # whatever changed before the watch was in place
                    self._watch_folder(notify)
            except Exception:  # the folder vanished under the watcher, or the OS watch failed: start over
                log.exception("config folder watch failed; restarting it")
                self._stop.wait(0.5)

    def _watch_folder(self, notify: Any) -> None:
        while not self._stop.is_set():
            raw = notify.watch(self.debounce_ms, self.step_ms, 500, self._stop)
            if raw == "stop":
                return
            if not isinstance(raw, set):  # "timeout" or "signal" (signals belong to the main thread)
                if not self.directory.is_dir():
                    return
                continue
            paths = {Path(p) for _, p in raw if is_config_file(Path(p)) and Path(p).parent == self.directory}
            if paths:
                try:
                    self._apply({path.stem: self._read_file(path) for path in sorted(paths)},
                                replace=False, reason="change")
                except Exception:  # keep watching whatever happens to one reload
                    log.exception("config reload failed")
            if not self.directory.is_dir():
                return

    def _safe_apply_all(self) -> None:
        if not self.directory.is_dir():
            return
        try:
            self._apply(self._read_all(), replace=True, reason="change")
        except Exception:
            log.exception("config resync failed")

