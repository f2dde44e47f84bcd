"""The per-user configs folder of an installed console: made from the packaged defaults on first use, then the
user's (edits and deletions stay), with only the schema kept current. Live reload works on it like on any folder."""

from __future__ import annotations

import threading
from pathlib import Path

from console.core.configs.file_store import FileStore, write_atomic
from console.core.configs.live import LiveConfigs
from console.core.configs.schema import SHIPPED_CONFIGS_DIR
from console.core.configs.user_folder import SCHEMA_RELATIVE, checkout_configs, ensure_user_configs
from console.core.configs.validation import ValidationContext


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_first_use_copies_the_defaults_and_the_schema(tmp_path: Path) -> None:
    target = ensure_user_configs(tmp_path / "data" / "configs", SHIPPED_CONFIGS_DIR)
    assert target == tmp_path / "data" / "configs"
    expected = {k: v for k, v in _snapshot(SHIPPED_CONFIGS_DIR).items() if k.endswith(".json")}
    assert _snapshot(target) == expected
    assert str(SCHEMA_RELATIVE) in expected
    assert not [p for p in target.parent.iterdir() if p.name.startswith(".")]  # no staging folder left behind


def test_the_users_edits_and_deletions_stay_and_the_schema_is_refreshed(tmp_path: Path) -> None:
    target = ensure_user_configs(tmp_path / "configs", SHIPPED_CONFIGS_DIR)
    (target / "weather.json").write_text('{"name": "Mine"}')
    (target / "news.json").unlink()
    (target / SCHEMA_RELATIVE).write_text("{}")  # an old or damaged copy of the schema
    ensure_user_configs(target, SHIPPED_CONFIGS_DIR)
    assert (target / "weather.json").read_text() == '{"name": "Mine"}'
    assert not (target / "news.json").exists()
    assert (target / SCHEMA_RELATIVE).read_bytes() == (SHIPPED_CONFIGS_DIR / SCHEMA_RELATIVE).read_bytes()


def test_two_processes_starting_together_share_one_complete_copy(tmp_path: Path) -> None:
    target = tmp_path / "configs"
    barrier = threading.Barrier(4)
    results: list[Path] = []

    def first_use() -> None:
        barrier.wait()
        results.append(ensure_user_configs(target, SHIPPED_CONFIGS_DIR))

    threads = [threading.Thread(target=first_use) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [target] * 4
    assert sorted(p.name for p in target.glob("*.json")) == sorted(
        p.name for p in SHIPPED_CONFIGS_DIR.glob("*.json")
    )
    assert [p.name for p in tmp_path.iterdir()] == ["configs"]


def test_the_user_copy_reloads_live(tmp_path: Path, ctx: ValidationContext) -> None:
    target = ensure_user_configs(tmp_path / "configs", SHIPPED_CONFIGS_DIR)
    configs = LiveConfigs(FileStore(target, ctx))
    configs.start()
    try:
        assert getattr(configs.get("weather"), "name", "") == "Weather Agent"
        text = (target / "weather.json").read_text().replace('"Weather Agent"', '"Sky Watcher"')
        write_atomic(target / "weather.json", text)
        assert configs.wait_for(lambda s: getattr(s.get("weather"), "name", "") == "Sky Watcher", 10.0)
    finally:
        configs.stop()


def test_a_checkout_uses_its_own_configs_folder() -> None:
    repo = Path(__file__).resolve().parents[2]
    assert checkout_configs() == repo / "configs"
    assert repo / "configs" == SHIPPED_CONFIGS_DIR
