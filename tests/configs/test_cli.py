"""`obo-console configs list | validate | push | pull`: outputs and exit codes, files and real Redis."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import redis

from console.cli import main
from tests.configs.conftest import agent, write_json

KEYS = ["conversation", "documents", "news", "simulator", "weather"]


@pytest.fixture
def files_mode(shipped_copy: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("OBO_CONSOLE_CONFIGS_DIR", str(shipped_copy))
    return shipped_copy


@pytest.fixture
def redis_mode(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("USE_REDIS", "true")
    monkeypatch.setenv("REDIS_URL", redis_url)
    return redis_url


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["configs", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_list_table(files_mode: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "list")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["KEY", "NAME", "MODEL", "TOOLS", "STATUS", "SOURCE"]
    rows = {line.split()[0]: line for line in lines[1:]}
    assert sorted(rows) == KEYS
    assert "warning" in rows["news"] and "web_search" in rows["news"]
    assert (
        rows["weather"].rstrip().endswith(str(files_mode / "weather.json")) and " valid " in rows["weather"]
    )
    assert "news.json: $.tools[0]: warning:" in err


def test_list_json_is_one_document(files_mode: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (files_mode / "bad.json").write_text('{"name": "Bad"}')
    code, out, err = run(capsys, "list", "--json")
    assert code == 0 and err == ""
    document = json.loads(out)
    by_key = {c["key"]: c for c in document["configs"]}
    assert sorted(by_key) == sorted([*KEYS, "bad"])
    assert by_key["bad"]["status"] == "invalid" and by_key["bad"]["serving"] is False
    assert {i["path"] for i in by_key["bad"]["issues"]} == {"$"}
    assert by_key["conversation"]["handoffs"] == ["simulator"]
    assert document["backend"] == f"files:{files_mode}"


def test_validate_default_store_and_exit_codes(files_mode: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "validate")
    assert code == 0
    assert out.splitlines()[-1] == "5 configs: 4 valid, 1 with warnings, 0 invalid"

    write_json(files_mode / "weather.json", agent("Weather", ["get_wether"]))
    code, out, _ = run(capsys, "validate")
    assert code == 1
    assert f"{files_mode / 'weather.json'}: $.tools[0]: 'get_wether' is not a known tool" in out
    # The agent that uses weather as a tool cannot be built either, and says why.
    assert "conversation.json: $.agents_as_tools[0].agent: refers to agent 'weather', which is invalid" in out
    assert out.splitlines()[-1] == "5 configs: 2 valid, 1 with warnings, 2 invalid (conversation, weather)"


def test_validate_paths(files_mode: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # One file is checked against its siblings (conversation refers to weather, news, ...).
    code, out, _ = run(capsys, "validate", str(files_mode / "conversation.json"))
    assert code == 0 and out.strip() == "1 config: 1 valid, 0 with warnings, 0 invalid"

    other = tmp_path / "other"
    write_json(other / "loop_a.json", agent("A", handoffs=["loop_b"]))
    write_json(other / "loop_b.json", agent("B", handoffs=["loop_a"]))
    write_json(other / "typo.json", {**agent("T"), "instructons": "x"})
    code, out, _ = run(capsys, "validate", str(other), str(files_mode / "weather.json"))
    assert code == 1
    assert "loop_a.json: $.handoffs[0]: agents form a cycle (loop_a → loop_b → loop_a)" in out
    assert "typo.json: $.instructons: unknown field 'instructons' (did you mean 'instructions'?)" in out
    assert out.splitlines()[-1] == "4 configs: 1 valid, 0 with warnings, 3 invalid (loop_a, loop_b, typo)"

    code, out, _ = run(capsys, "validate", "--json", str(other / "typo.json"))
    assert code == 1 and json.loads(out)["ok"] is False

    with pytest.raises(SystemExit):
        main(["configs", "nope"])
    assert main(["configs", "validate", str(tmp_path / "missing.json")]) == 1
    assert "no such file or folder" in capsys.readouterr().err


def test_push_validate_and_pull_with_redis(
    files_mode: Path, redis_mode: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    client = redis.Redis.from_url(redis_mode)
    code, out, _ = run(capsys, "push")  # default: the configs folder
    assert code == 0
    assert sorted(line.split()[1] for line in out.splitlines()) == KEYS
    assert "pushed news -> agent|news (with warnings)" in out
    assert json.loads(client.get("agent|simulator"))["tools"] == ["run_simulation"]

    # A bad file is refused and the key keeps its good value.
    bad = write_json(tmp_path / "bad" / "weather.json", agent("Weather", ["get_wether"]))
    before = client.get("agent|weather")
    code, out, err = run(capsys, "push", str(bad))
    assert code == 1 and out == ""
    assert "refused weather: invalid, agent|weather left as it was" in err and "$.tools[0]" in err
    assert client.get("agent|weather") == before

    # validate (Redis mode) finds invalid entries already in Redis and names them.
    client.set("agent|legacy", json.dumps({"name": "Legacy", "model": "m", "tools": []}))
    code, out, _ = run(capsys, "validate")
    assert code == 1
    assert "redis agent|legacy: $: missing required field 'instructions'" in out
    assert out.splitlines()[-1] == "6 configs: 4 valid, 1 with warnings, 1 invalid (legacy)"

    code, out, _ = run(capsys, "list")
    assert "redis agent|weather" in out

    target = tmp_path / "pulled"
    code, out, err = run(capsys, "pull", str(target))
    assert code == 1  # the invalid legacy entry is pulled (nothing lost) but reported
    assert sorted(p.stem for p in target.glob("*.json")) == sorted([*KEYS, "legacy"])
    assert (target / "weather.json").read_bytes() == before
    assert "agent|legacy is invalid" in err
    # Pulling again changes nothing; an invalid entry never overwrites an existing file.
    write_json(target / "legacy.json", agent("Legacy"))
    code, out, err = run(capsys, "pull", str(target))
    assert "unchanged" in out and "skipped agent|legacy: invalid in Redis" in err
    assert json.loads((target / "legacy.json").read_text())["instructions"] == "You are Legacy."
    client.close()


def test_redis_unreachable_is_a_clear_error(
    files_mode: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")
    code, _, err = run(capsys, "push")
    assert code == 1
    assert "Redis at redis://127.0.0.1:1/0 is unreachable" in err and "Traceback" not in err


def test_console_script_entry_point(files_mode: Path) -> None:
    """The real `obo-console` process: exit code and stdout as a script sees them."""
    env = {**os.environ, "OBO_CONSOLE_CONFIGS_DIR": str(files_mode)}
    write_json(files_mode / "broken.json", {**agent("B"), "mcp_servers": ["http://127.0.0.1:9/mcp"]})
    result = subprocess.run(
        [sys.executable, "-m", "console.cli", "configs", "validate"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert result.returncode == 1, result.stderr
    assert "broken.json: $.mcp_servers[0]: 'http://127.0.0.1:9/mcp' looks like a URL" in result.stdout
