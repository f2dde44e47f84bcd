"""The schema and the checks beyond it: every problem reported with its source and JSON path."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from console.core.configs.catalog import ConfigSet, RawConfig, reconcile
from console.core.configs.model import AgentConfig, display_source, file_source, redis_source
from console.core.configs.schema import SHIPPED_CONFIGS_DIR, load_schema
from console.core.configs.validation import ValidationContext, is_json_schema, validate_configs
from tests.configs.conftest import FOUR_FIELD_CONFIGS, agent


def check_folder(folder: Path, ctx: ValidationContext) -> ConfigSet:
    raw = {
        p.stem: RawConfig(p.stem, file_source(p), p.read_bytes())
        for p in sorted(folder.glob("*.json"))
        if not is_json_schema(p.read_bytes())
    }
    return reconcile(raw, None, ctx)


def check_docs(docs: dict[str, Any], ctx: ValidationContext) -> ConfigSet:
    raw = {
        key: RawConfig(key, redis_source(key), doc if isinstance(doc, str) else json.dumps(doc))
        for key, doc in docs.items()
    }
    return reconcile(raw, None, ctx)


def messages(configs: ConfigSet, key: str) -> list[str]:
    return [str(issue) for issue in configs.entries[key].issues]


def test_four_field_configs_with_the_older_tool_names_validate(
    tmp_path: Path, ctx: ValidationContext
) -> None:
    for key, doc in FOUR_FIELD_CONFIGS.items():
        (tmp_path / f"{key}.json").write_text(json.dumps(doc))
    configs = check_folder(tmp_path, ctx)
    assert sorted(configs.configs) == sorted(FOUR_FIELD_CONFIGS)
    assert configs.errors == []
    # The news agent names OpenAI's hosted web search: a warning with the offline model, not an error.
    assert [(w.key, w.path) for w in configs.warnings] == [("news", "$.tools[0]")]
    assert "offline demo model cannot run" in configs.warnings[0].message
    assert configs.entries["news"].status == "warning"


def test_shipped_configs_validate_and_use_every_collaboration_feature(ctx: ValidationContext) -> None:
    configs = check_folder(SHIPPED_CONFIGS_DIR, ctx)
    assert configs.errors == [], [str(e) for e in configs.errors]
    assert set(configs.configs) == {"conversation", "weather", "news", "simulator", "documents"}
    main = configs.configs["conversation"]
    assert [ref.agent for ref in main.agents_as_tools] == ["weather", "news", "documents"]
    assert [ref.agent for ref in main.handoffs] == ["simulator"]
    assert configs.configs["documents"].mcp_servers == ["documents"]
    assert configs.configs["simulator"].model_settings == {"temperature": 0, "parallel_tool_calls": False}
    assert [w.key for w in configs.warnings] == ["news"]  # web_search, offline


def test_schema_is_kept_apart_from_the_configs() -> None:
    schema = load_schema()
    assert schema["additionalProperties"] is False
    assert set(schema["required"]) == {"name", "instructions", "model", "tools"}
    assert not (SHIPPED_CONFIGS_DIR / "agent_config.schema.json").exists()


def test_agent_config_model_normalises_handoffs() -> None:
    doc = agent(
        "Main",
        handoffs=["sim", {"agent": "other", "description": "when asked"}],
        agents_as_tools=[{"agent": "w", "description": "weather", "tool_name": "ask_weather"}],
        model_settings={"temperature": 0.2},
    )
    config = AgentConfig.from_document(doc, key="main", source="file:/x/main.json")
    assert [(h.agent, h.description) for h in config.handoffs] == [("sim", None), ("other", "when asked")]
    assert config.agents_as_tools[0].tool_name == "ask_weather"
    assert config.referenced_agents == ["w", "sim", "other"]
    assert config.model_settings == {"temperature": 0.2}
    with pytest.raises(ValueError):
        config.name = "changed"  # frozen


INVALID_CASES: list[tuple[str, Any, str, str]] = [
    ("typo_field", {**agent("A"), "toolz": []}, "$.toolz", "unknown field 'toolz' (did you mean 'tools'?)"),
    (
        "missing_model",
        {k: v for k, v in agent("A").items() if k != "model"},
        "$",
        "missing required field 'model'",
    ),
    ("tools_not_list", {**agent("A"), "tools": "get_current_time"}, "$.tools", "is not of type 'array'"),
    (
        "unknown_tool",
        agent("A", ["get_current_time", "get_wether"]),
        "$.tools[1]",
        "'get_wether' is not a known tool",
    ),
    (
        "duplicate_tool",
        agent("A", ["get_current_time", "get_current_time"]),
        "$.tools",
        "lists the same name more than once",
    ),
    ("empty_name", {**agent("A"), "name": ""}, "$.name", "should be non-empty"),
    (
        "unknown_mcp_server",
        agent("A", mcp_servers=["docs"]),
        "$.mcp_servers[0]",
        "'docs' is not an MCP server defined in settings (did you mean 'documents'?)",
    ),
    (
        "url_as_mcp_server",
        agent("A", mcp_servers=["https://evil.example/mcp"]),
        "$.mcp_servers[0]",
        "looks like a URL; configs name MCP servers defined in settings",
    ),
    (
        "temperature_range",
        agent("A", model_settings={"temperature": 5}),
        "$.model_settings.temperature",
        "5 is greater than the maximum of 2",
    ),
    (
        "model_setting_unknown",
        agent("A", model_settings={"seed": 1}),
        "$.model_settings.seed",
        "unknown field 'seed'",
    ),
    (
        "agent_tool_no_description",
        agent("A", agents_as_tools=[{"agent": "b"}]),
        "$.agents_as_tools[0]",
        "missing required field 'description'",
    ),
    ("handoff_bad_key", agent("A", handoffs=["bad key!"]), "$.handoffs[0]", "does not match"),
    ("self_handoff", agent("A", handoffs=["case"]), "$.handoffs[0]", "agent 'case' refers to itself"),
    (
        "unknown_handoff",
        agent("A", handoffs=[{"agent": "ghost"}]),
        "$.handoffs[0].agent",
        "'ghost' is not a known agent",
    ),
    (
        "unknown_agent_tool",
        agent("A", agents_as_tools=[{"agent": "ghost", "description": "d"}]),
        "$.agents_as_tools[0].agent",
        "'ghost' is not a known agent",
    ),
    (
        "tool_name_clash",
        agent(
            "A",
            ["get_current_date"],
            agents_as_tools=[{"agent": "helper", "description": "d", "tool_name": "get_current_date"}],
        ),
        "$.agents_as_tools[0].tool_name",
        "tool name 'get_current_date' is already used at $.tools[0]",
    ),
    ("not_an_object", "[1, 2]", "$", "is not of type 'object'"),
    ("invalid_json", '{\n  "name": "A",\n  "tools": [\n}', "$", "invalid JSON at line 4, column 1"),
]


@pytest.mark.parametrize(
    ("case", "doc", "path", "fragment"), INVALID_CASES, ids=[c[0] for c in INVALID_CASES]
)
def test_invalid_config_reported_with_source_and_path(
    tmp_path: Path, ctx: ValidationContext, case: str, doc: Any, path: str, fragment: str
) -> None:
    folder = tmp_path / "configs"
    folder.mkdir()
    (folder / "helper.json").write_text(json.dumps(agent("Helper")))
    (folder / "case.json").write_text(doc if isinstance(doc, str) else json.dumps(doc))
    configs = check_folder(folder, ctx)
    entry = configs.entries["case"]
    assert entry.status == "invalid"
    assert entry.serving is None and "case" not in configs.configs
    source = display_source(file_source(folder / "case.json"))
    lines = [str(issue) for issue in entry.issues]
    assert any(line.startswith(f"{source}: {path}: ") and fragment in line for line in lines), lines
    assert configs.entries["helper"].status == "valid"  # one bad config does not take the others down


def test_every_error_is_reported_not_only_the_first(ctx: ValidationContext) -> None:
    doc = {"name": "", "instructions": "x", "tools": ["nope", 3], "colour": "red", "mcp_servers": ["x"]}
    configs = check_docs({"many": doc}, ctx)
    paths = sorted(issue.path for issue in configs.entries["many"].issues)
    assert paths == ["$", "$.colour", "$.mcp_servers[0]", "$.name", "$.tools[0]", "$.tools[1]"], messages(
        configs, "many"
    )
    assert all(str(i).startswith("redis agent|many: ") for i in configs.entries["many"].issues)


def test_cycles_are_errors_on_every_member(ctx: ValidationContext) -> None:
    docs = {
        "a": agent("A", handoffs=["b"]),
        "b": agent("B", agents_as_tools=[{"agent": "c", "description": "c"}]),
        "c": agent("C", handoffs=[{"agent": "a", "description": "back"}]),
        "d": agent("D", handoffs=["a"]),  # not in the cycle, but uses it
        "e": agent("E", handoffs=["f"]),
        "f": agent("F"),
    }
    configs = check_docs(docs, ctx)
    for key, path in (
        ("a", "$.handoffs[0]"),
        ("b", "$.agents_as_tools[0].agent"),
        ("c", "$.handoffs[0].agent"),
    ):
        issues = configs.entries[key].issues
        assert configs.entries[key].status == "invalid"
        assert any(i.path == path and "cycle (a → b → c → a)" in i.message for i in issues), messages(
            configs, key
        )
    assert any("refers to agent 'a', which is invalid" in m for m in messages(configs, "d"))
    assert sorted(configs.configs) == ["e", "f"]


def test_two_agent_handoff_loop_is_a_cycle(ctx: ValidationContext) -> None:
    configs = check_docs({"main": agent("M", handoffs=["sim"]), "sim": agent("S", handoffs=["main"])}, ctx)
    assert configs.configs == {}
    assert "cycle (main → sim → main)" in configs.entries["sim"].issues[0].message


def test_hosted_tool_warning_depends_on_the_model(ctx: ValidationContext) -> None:
    news = {"news": FOUR_FIELD_CONFIGS["news"]}
    assert [w.path for w in check_docs(news, ctx).warnings] == ["$.tools[0]"]
    openai_ctx = ValidationContext(
        ctx.known_tools,
        ctx.known_mcp_servers,
        offline_model=False,
        hosted_tools=ctx.hosted_tools,
        provider="openai",
    )
    result = check_docs(news, openai_ctx)
    assert result.issues == [] and result.entries["news"].status == "valid"


def test_validate_configs_function_for_the_runtime(ctx: ValidationContext) -> None:
    good = AgentConfig.from_document(agent("W", ["get_current_weather"]), key="w", source="redis:agent|w")
    main = AgentConfig.from_document(agent("M", handoffs=["w", "x"]), key="m", source="redis:agent|m")
    issues = validate_configs([good, main], ctx.known_tools, ctx.known_mcp_servers, offline_model=True)
    assert [(i.key, i.path, i.severity) for i in issues] == [("m", "$.handoffs[1]", "error")]
    assert "'x' is not a known agent" in issues[0].message


def test_bad_key_is_reported(ctx: ValidationContext) -> None:
    configs = check_docs({"_hidden": agent("A")}, ctx)
    assert "cannot be an agent key" in messages(configs, "_hidden")[0]
