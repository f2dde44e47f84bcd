"""`obo-console configs list | validate [PATH...] | push [PATH...] | pull [DIR]`: the agent config store.

The active store is configs/*.json, or Redis when USE_REDIS=true (keys ``agent|<key>`` at REDIS_URL).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from console.commands import settings_overrides
from console.core.configs.catalog import ConfigEntry, ConfigSet, RawConfig, reconcile
from console.core.configs.file_store import write_atomic
from console.core.configs.model import KEY_PATTERN, display_source, file_source
from console.core.configs.open_store import configs_dir, open_store, validation_context
from console.core.configs.validation import ValidationContext, is_json_schema
from console.core.settings import Settings, load_settings
from mcp_server.errors import UserError

if TYPE_CHECKING:
    from console.core.configs.redis_store import RedisStore


def run(args: argparse.Namespace) -> int:
    settings = load_settings(**settings_overrides(args))
    ctx = validation_context(settings)
    action = args.configs_action
    if action == "list":
        return _list(settings, ctx, as_json=args.json)
    if action == "validate":
        return _validate(settings, ctx, args.paths, as_json=args.json)
    if action == "push":
        return _push(settings, ctx, args.paths)
    if action == "pull":
        return _pull(settings, ctx, args.dir)
    raise UserError(f"unknown configs action {action!r}")


# -- shared helpers --------------------------------------------------------------------------------------------
def _load_active(settings: Settings, ctx: ValidationContext) -> ConfigSet:
    store = open_store(settings, ctx)
    try:
        return store.load_all()
    finally:
        store.close()


def _print_issues(entries: list[ConfigEntry], stream: Any) -> None:
    for entry in entries:
        for issue in entry.issues:
            print(str(issue), file=stream)


def _summary(entries: list[ConfigEntry]) -> str:
    counts = {
        status: sum(1 for e in entries if e.status == status) for status in ("valid", "warning", "invalid")
    }
    return (
        f"{len(entries)} config{'s' if len(entries) != 1 else ''}: {counts['valid']} valid, "
        f"{counts['warning']} with warnings, {counts['invalid']} invalid"
    )


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows
    )


# -- list ------------------------------------------------------------------------------------------------------
def _list(settings: Settings, ctx: ValidationContext, *, as_json: bool) -> int:
    configs = _load_active(settings, ctx)
    entries = list(configs.entries.values())
    if as_json:
        document = {"backend": configs.backend, "configs": [entry.to_dict() for entry in entries]}
        print(json.dumps(document, indent=2, ensure_ascii=False))
        return 0
    if not entries:
        print(f"No agent configs in {configs.backend}.")
        return 0
    rows = [["KEY", "NAME", "MODEL", "TOOLS", "STATUS", "SOURCE"]]
    for entry in entries:
        shown = entry.serving or entry.config
        tools = ", ".join(shown.tools) if shown else "-"
        rows.append(
            [
                entry.key,
                shown.name if shown else "-",
                shown.model if shown else "-",
                tools or "-",
                entry.status,
                display_source(entry.source),
            ]
        )
    print(_table(rows))
    _print_issues(entries, sys.stderr)
    return 0


# -- validate --------------------------------------------------------------------------------------------------
def _config_files(paths: list[Path]) -> tuple[list[Path], set[Path]]:
    """The files to report on, and the folders whose configs form the set they are checked against."""
    files: list[Path] = []
    folders: set[Path] = set()
    for path in paths:
        path = path.expanduser()
        if path.is_dir():
            folder = path.resolve()
            folders.add(folder)
            files.extend(p.resolve() for p in sorted(folder.glob("*.json")) if not p.name.startswith("."))
        elif path.is_file():
            files.append(path.resolve())
            folders.add(path.resolve().parent)
        else:
            raise UserError(f"{path}: no such file or folder.", hint="Give config files (*.json) or folders.")
    return list(dict.fromkeys(files)), folders


def _raw_from_files(files: list[Path], folders: set[Path]) -> dict[str, RawConfig]:
    """Sibling configs first, then the named files, so references resolve as the file store would see them."""
    raw: dict[str, RawConfig] = {}
    for path in [p for folder in sorted(folders) for p in sorted(folder.glob("*.json"))] + files:
        data = path.read_bytes()
        if not path.name.startswith(".") and not is_json_schema(data):
            raw[path.stem] = RawConfig(path.stem, file_source(path), data)
    return raw


def _validate(settings: Settings, ctx: ValidationContext, paths: list[Path], *, as_json: bool) -> int:
    if paths:
        files, folders = _config_files(paths)
        if not files:
            raise UserError("No config files (*.json) in the given folders.")
        keys = [path.stem for path in files]
        duplicates = sorted({k for k in keys if keys.count(k) > 1})
        if duplicates:
            raise UserError(
                f"Several files define the same agent key: {', '.join(duplicates)}.",
                hint="Validate one folder at a time: a key is the file name without .json.",
            )
        raw = _raw_from_files(files, folders)
        skipped = [
            path for path in files if path.stem not in raw or raw[path.stem].source != file_source(path)
        ]
        for path in skipped:
            print(f"{path}: skipped: a JSON Schema, not an agent config", file=sys.stderr)
        configs = reconcile(raw, None, ctx, backend="files")
        wanted = {file_source(path) for path in files}
        entries = [entry for entry in configs.entries.values() if entry.source in wanted]
        backend = "files"
    else:
        configs = _load_active(settings, ctx)
        entries = list(configs.entries.values())
        backend = configs.backend
    ok = all(entry.status != "invalid" for entry in entries)
    if as_json:
        document = {"ok": ok, "backend": backend, "configs": [entry.to_dict() for entry in entries]}
        print(json.dumps(document, indent=2, ensure_ascii=False))
    else:
        _print_issues(entries, sys.stdout)
        invalid = [entry.key for entry in entries if entry.status == "invalid"]
        print(_summary(entries) + (f" ({', '.join(invalid)})" if invalid else ""))
    return 0 if ok else 1


# -- push / pull -----------------------------------------------------------------------------------------------
def _redis_store(settings: Settings, ctx: ValidationContext) -> RedisStore:
    from console.core.configs.redis_store import RedisStore  # deferred: redis, for push and pull only

    store = RedisStore(settings.redis_url, ctx, channel=settings.redis_channel)
    store.load_all()  # raises a clear UserError when Redis is unreachable
    return store


def _push(settings: Settings, ctx: ValidationContext, paths: list[Path]) -> int:
    files, _ = _config_files(paths or [configs_dir(settings)])
    if not files:
        raise UserError("No config files (*.json) to push.")
    store = _redis_store(settings, ctx)
    try:
        written, refused = store.put_many({path.stem: path.read_bytes() for path in files})
    finally:
        store.close()
    for entry in written:
        note = " (with warnings)" if entry.issues else ""
        print(f"pushed {entry.key} -> {store.prefix}{entry.key}{note}")
        for issue in entry.issues:
            print(f"  {issue}", file=sys.stderr)
    for key, issues in sorted(refused.items()):
        print(f"refused {key}: invalid, {store.prefix}{key} left as it was", file=sys.stderr)
        for issue in issues:
            print(f"  {issue}", file=sys.stderr)
    return 1 if refused else 0


def _pull(settings: Settings, ctx: ValidationContext, directory: Path | None) -> int:
    target = (directory or configs_dir(settings)).expanduser()
    target.mkdir(parents=True, exist_ok=True)
    store = _redis_store(settings, ctx)
    try:
        configs = store.current()
        raw = store.sources()  # the values exactly as Redis holds them
    finally:
        store.close()
    problems = 0
    for key, entry in configs.entries.items():
        if key not in raw:
            continue
        if not re.match(KEY_PATTERN, key):  # never let a key name a path outside the folder
            print(f"skipped {store.prefix}{key}: not a usable file name", file=sys.stderr)
            problems += 1
            continue
        path = target / f"{key}.json"
        text = raw[key].text
        data = text if isinstance(text, bytes) else text.encode()
        if path.exists() and path.read_bytes() == data:
            print(f"unchanged {path}")
            continue
        if entry.status == "invalid" and path.exists():
            print(f"skipped {store.prefix}{key}: invalid in Redis, {path} kept", file=sys.stderr)
            _print_issues([entry], sys.stderr)
            problems += 1
            continue
        write_atomic(path, data)
        print(f"wrote {path}")
        if entry.status == "invalid":
            print(f"  warning: {store.prefix}{key} is invalid:", file=sys.stderr)
            _print_issues([entry], sys.stderr)
            problems += 1
    if not raw:
        print(f"No agent configs in {store.backend}.", file=sys.stderr)
    return 1 if problems else 0
