"""The file store with live reload (real watchfiles on a real folder): edits are served, bad edits are
reported while the last good version keeps serving, deletes of agents in use are refused."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from console.core.configs.catalog import ConfigChange
from console.core.configs.file_store import FileStore
from console.core.configs.live import LiveConfigs
from console.core.configs.store import ConfigRejected
from console.core.configs.validation import ValidationContext
from console.core.events import EventBus, Notice
from tests.configs.conftest import agent, write_json

TIMEOUT = 10.0


class Recorder:
    """Collects changes and Notice events; lets a test wait for the next matching one."""

    def __init__(self) -> None:
        self.changes: list[ConfigChange] = []
        self.notices: list[Notice] = []
        self._cond = threading.Condition()

    def on_change(self, change: ConfigChange) -> None:
        with self._cond:
            self.changes.append(change)
            self._cond.notify_all()

    def on_event(self, event: Any) -> None:
        if isinstance(event, Notice):
            with self._cond:
                self.notices.append(event)
                self._cond.notify_all()

    def wait_notice(self, fragment: str) -> Notice:
        with self._cond:
            assert self._cond.wait_for(lambda: any(fragment in n.message for n in self.notices), TIMEOUT), [
                n.message for n in self.notices
            ]
            return next(n for n in self.notices if fragment in n.message)


@pytest.fixture
def live(shipped_copy: Path, ctx: ValidationContext) -> Iterator[tuple[LiveConfigs, Recorder, Path]]:
    bus = EventBus()
    recorder = Recorder()
    bus.subscribe(recorder.on_event)
    configs = LiveConfigs(FileStore(shipped_copy, ctx), bus=bus)
    configs.start()
    configs.subscribe(recorder.on_change)
    try:
        yield configs, recorder, shipped_copy
    finally:
        configs.stop()


def edit(path: Path, **changes: Any) -> dict[str, Any]:
    document = json.loads(path.read_text())
    document.update(changes)
    write_json(path, document)
    return document


def test_initial_load_serves_shipped_configs(live: tuple[LiveConfigs, Recorder, Path]) -> None:
    configs, recorder, folder = live
    assert sorted(configs.current.configs) == ["conversation", "documents", "news", "simulator", "weather"]
    assert configs.get("weather").source == f"file:{folder / 'weather.json'}"
    # The initial findings were published: the news agent's web_search warning.
    assert any(n.level == "warning" and "web_search" in n.message for n in recorder.notices)


def test_edit_is_served_and_only_that_key_changes(live: tuple[LiveConfigs, Recorder, Path]) -> None:
    configs, recorder, folder = live
    edit(folder / "weather.json", name="Weather Agent v2", tools=["get_current_weather"])
    assert configs.wait_for(lambda s: s.get("weather").name == "Weather Agent v2", TIMEOUT)
    assert configs.get("weather").tools == ["get_current_weather"]
    change = configs.last_change
    assert change is not None and change.updated == {"weather"} and not change.added and not change.removed
    assert recorder.wait_notice("configs reloaded (updated: weather)")


def test_invalid_edit_reported_and_last_good_keeps_serving(live: tuple[LiveConfigs, Recorder, Path]) -> None:
    configs, recorder, folder = live
    good = configs.get("weather")
    edit(folder / "weather.json", name="Broken", tools=["get_wether"])
    # Waits past a reload that may see the file half-written (see test_edit_closing_a_cycle_is_rejected).
    assert configs.wait_for(
        lambda s: (
            s.entries["weather"].status == "invalid"
            and any(i.path == "$.tools[0]" for i in s.entries["weather"].issues)
        ),
        TIMEOUT,
    )
    entry = configs.current.entries["weather"]
    assert entry.serving == good and entry.serving_last_good  # the last good version keeps serving
    assert [(i.path, i.severity) for i in entry.issues] == [("$.tools[0]", "error")]
    notice = recorder.wait_notice("'get_wether' is not a known tool")
    assert notice.level == "error" and "weather.json: $.tools[0]" in notice.message
    assert "the last good version keeps serving" in notice.message

    (folder / "weather.json").write_text('{"name": "half a file", ')  # invalid JSON too
    assert configs.wait_for(lambda s: "invalid JSON" in str(s.entries["weather"].issues), TIMEOUT)
    assert configs.get("weather") == good

    edit_doc = json.loads(json.dumps(good.document)) | {"name": "Fixed"}
    write_json(folder / "weather.json", edit_doc)
    assert configs.wait_for(lambda s: s.entries["weather"].status == "valid", TIMEOUT)
    assert configs.get("weather").name == "Fixed"


def test_edit_closing_a_cycle_is_rejected(live: tuple[LiveConfigs, Recorder, Path]) -> None:
    configs, _, folder = live
    edit(folder / "simulator.json", handoffs=["conversation"])
    cycle = "cycle (conversation → simulator → conversation)"
    # The file is written in place, as editors do: a reload may first see it half-written (invalid JSON, also
    # rejected); the settled state is the cycle.
    assert configs.wait_for(
        lambda s: (
            s.entries["simulator"].status == "invalid" and cycle in s.entries["simulator"].issues[0].message
        ),
        TIMEOUT,
    )
    assert configs.get("simulator").handoffs == []  # last good: no handoff back
    assert configs.current.entries["conversation"].status == "valid"  # the agent that was fine stays fine


def test_delete_of_agent_in_use_keeps_it_and_reports(live: tuple[LiveConfigs, Recorder, Path]) -> None:
    configs, _, folder = live
    (folder / "weather.json").unlink()
    assert configs.wait_for(lambda s: s.entries["weather"].status == "invalid", TIMEOUT)
    assert configs.get("weather") is not None
    assert "still used by 'conversation'" in configs.current.entries["weather"].issues[0].message


def test_new_file_added_and_unused_file_removed(live: tuple[LiveConfigs, Recorder, Path]) -> None:
    configs, _, folder = live
    write_json(folder / "helper.json", agent("Helper", ["get_current_time"]))
    assert configs.wait_for(lambda s: s.get("helper") is not None, TIMEOUT)
    assert configs.last_change.added == {"helper"}
    (folder / "helper.json").unlink()
    assert configs.wait_for(lambda s: "helper" not in s.entries, TIMEOUT)
    assert configs.last_change.removed == {"helper"}
    # Files that are not agent configs are ignored: dot-files, other suffixes, sub-folders (the schema).
    (folder / ".draft.json").write_text("{")
    (folder / "notes.txt").write_text("x")
    assert sorted(FileStore(folder, configs.store.ctx).load_all().entries) == sorted(configs.current.entries)


def test_put_validates_before_writing(live: tuple[LiveConfigs, Recorder, Path]) -> None:
    configs, _, folder = live
    store = configs.store
    before = (folder / "weather.json").read_bytes()
    with pytest.raises(ConfigRejected) as rejected:
        store.put(agent("Weather", ["get_wether"]), "weather")
    assert (folder / "weather.json").read_bytes() == before  # nothing written
    assert "$.tools[0]" in str(rejected.value)
    with pytest.raises(ConfigRejected):
        store.put(agent("X", handoffs=["nobody"]), "extra")
    assert not (folder / "extra.json").exists()

    entry = store.put(agent("Extra", ["get_current_date"]), "extra")
    assert entry.status == "valid" and store.get("extra").name == "Extra"
    assert json.loads((folder / "extra.json").read_text())["name"] == "Extra"
    assert configs.wait_for(lambda s: s.get("extra") is not None, TIMEOUT)

    with pytest.raises(ConfigRejected, match="other agents use it"):
        store.delete("weather")
    store.delete("extra")
    assert not (folder / "extra.json").exists() and store.get("extra") is None


def test_missing_folder_is_a_clear_error(tmp_path: Path, ctx: ValidationContext) -> None:
    from mcp_server.errors import UserError

    with pytest.raises(UserError, match="does not exist"):
        FileStore(tmp_path / "nope", ctx).load_all()


def test_folder_moved_away_drops_its_configs_though_no_file_was_deleted(
    live: tuple[LiveConfigs, Recorder, Path], tmp_path: Path
) -> None:
    """A rename of the folder sends the watch no event for the files in it (and a removal under load can lose
    them as the watch dies): the folder being gone is what drops its configs, and its return brings them back."""
    configs, _, folder = live
    elsewhere = tmp_path / "moved-away"
    folder.rename(elsewhere)
    assert configs.wait_for(lambda s: s.get("documents") is None, TIMEOUT)
    elsewhere.rename(folder)
    assert configs.wait_for(lambda s: s.get("documents") is not None, TIMEOUT)


def test_folder_removed_and_restored(live: tuple[LiveConfigs, Recorder, Path], tmp_path: Path) -> None:
    import shutil

    configs, _, folder = live
    backup = tmp_path / "backup"
    shutil.copytree(folder, backup)
    shutil.rmtree(folder)
    assert configs.wait_for(
        lambda s: s.get("documents") is None, TIMEOUT
    )  # unused agents go with their files
    edit(backup / "weather.json", name="Weather restored")
    shutil.copytree(backup, folder)  # e.g. switching back to a branch
    assert configs.wait_for(lambda s: getattr(s.get("weather"), "name", "") == "Weather restored", TIMEOUT)
    assert sorted(configs.current.configs) == ["conversation", "documents", "news", "simulator", "weather"]
    assert configs.current.ok


def test_folder_replaced_at_once_is_watched_again(
    live: tuple[LiveConfigs, Recorder, Path], tmp_path: Path
) -> None:
    # Removed and made again before the watcher looks (a branch switch): the OS watch is on the old folder, so
    # the watcher must notice the folder is another one and watch the new one.
    import shutil

    configs, _, folder = live
    backup = tmp_path / "backup"
    shutil.copytree(folder, backup)
    edit(backup / "weather.json", name="Weather replaced")
    shutil.rmtree(folder)
    shutil.copytree(backup, folder)
    assert configs.wait_for(lambda s: getattr(s.get("weather"), "name", "") == "Weather replaced", TIMEOUT)
    edit(folder / "news.json", name="News after the switch")  # and later edits in the new folder are seen
    assert configs.wait_for(lambda s: getattr(s.get("news"), "name", "") == "News after the switch", TIMEOUT)


def test_close_stops_the_watcher_before_returning(shipped_copy: Path, ctx: ValidationContext) -> None:
    before = set(threading.enumerate())
    configs = LiveConfigs(FileStore(shipped_copy, ctx))
    configs.start()
    watchers = [t for t in set(threading.enumerate()) - before if t.name == "configs-file-watcher"]
    assert len(watchers) == 1 and watchers[0].is_alive()
    configs.stop()  # sets the stop event watchfiles polls every step, then joins the thread
    assert not watchers[0].is_alive()
