"""Configs as ``<dir>/<key>.json`` files, reloaded live with watchfiles.

Only ``*.json`` directly in the folder are agent configs (the schema sits in ``schema/``; editors' and our own
temporary files start with a dot and are ignored). A change re-reads only the files it names.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable, Mapping
from contextlib import closing
from pathlib import Path

from watchfiles import Change, watch

from console.core.configs.catalog import RawConfig
from console.core.configs.model import file_source
from console.core.configs.store import ReconcilingStore
from console.core.configs.validation import ValidationContext, is_json_schema
from mcp_server.errors import UserError

log = logging.getLogger(__name__)

# How long the watcher may sleep without news: bounds start-up (see _watch_folder) and noticing the folder went.
WAKE_MS = 100


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
        folder_was_there = True
        while not self._stop.is_set():
            if not self.directory.is_dir():  # removed (e.g. a branch switch): wait for it to come back
                if folder_was_there:
                    # Its files went with it, whether or not the watch saw each removal before it stopped.
                    folder_was_there = False
                    self._reload(dict, replace=True)
                self._ready.set()
                self._stop.wait(0.5)
                continue
            folder_was_there = True
            try:
                self._watch_folder()
            except Exception:  # the folder vanished under the watcher, or the OS watch failed: start over
                log.exception("config folder watch failed; restarting it")
                self._stop.wait(0.5)

    def _watch_folder(self) -> None:
        """One watch of the folder, until it is stopped or the folder goes away.

        ``watch()`` registers the OS watch on its first iteration and yields an empty set after each quiet
        ``WAKE_MS``: the first yield therefore proves the watch is in place, which is when we are ready and
        resync whatever changed before it."""
        changes = watch(
            self.directory,
            watch_filter=self._is_watched,
            debounce=self.debounce_ms,
            step=self.step_ms,
            stop_event=self._stop,
            rust_timeout=WAKE_MS,
            yield_on_timeout=True,
            raise_interrupt=False,  # signals belong to the main thread
            recursive=False,
        )
        watched = self._folder_identity()
        with closing(changes):
            first = True
            for batch in changes:
                if first:
                    first = False
                    self._ready.set()
                    self._safe_apply_all()  # whatever changed before the watch was in place
                elif batch:
                    files = {Path(path) for _, path in batch if Path(path) != self.directory}
                    if files:
                        self._apply_changed(files)
                    if len(files) < len(batch):  # the folder itself went: the OS watch died with it
                        return
                if self._folder_identity() != watched:
                    # Gone, or removed and made again (a branch switch): the OS watch is on the old folder.
                    return

    def _folder_identity(self) -> tuple[int, int] | None:
        try:
            stat = self.directory.stat()
        except OSError:
            return None
        return (stat.st_dev, stat.st_ino)

    def _is_watched(self, _change: Change, path: str) -> bool:
        # The folder itself too: its removal ends the OS watch even when a new folder (maybe with the same inode
        # number) stands at the path again.
        return Path(path) == self.directory or (
            is_config_file(Path(path)) and Path(path).parent == self.directory
        )

    def _apply_changed(self, paths: set[Path]) -> None:
        self._reload(lambda: {path.stem: self._read_file(path) for path in sorted(paths)}, replace=False)

    def _safe_apply_all(self) -> None:
        if self.directory.is_dir():
            self._reload(self._read_all, replace=True)

    def _reload(self, read: Callable[[], Mapping[str, RawConfig | None]], *, replace: bool) -> None:
        try:
            self._apply(read(), replace=replace, reason="change")
        except Exception:  # keep watching whatever happens to one reload
            log.exception("config reload failed")
