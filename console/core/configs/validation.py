"""Validation of agent configs: JSON syntax, the JSON Schema, then what the schema cannot know (the tool
registry, the MCP servers in settings, the model's abilities, references between configs and their cycles).

Every finding is a ``ConfigIssue`` with the config's source and a JSON path, and every finding is reported,
not only the first. Errors make a config unusable; warnings (a hosted tool the offline model cannot run) don't.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from jsonschema.exceptions import ValidationError, best_match

from console.core.configs.model import KEY_PATTERN, AgentConfig, ConfigIssue
from console.core.configs.schema import validator

# Tools the model provider runs itself (OpenAI's hosted tools): known, but the offline model cannot run them.
DEFAULT_HOSTED_TOOLS: frozenset[str] = frozenset({"web_search"})
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_URL_LIKE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://|/")


@dataclass(frozen=True)
class ValidationContext:
    """What validation checks names against: the tool registry, the MCP servers in settings, the model."""

    known_tools: frozenset[str]
    known_mcp_servers: frozenset[str]
    offline_model: bool = True  # True when the model cannot run hosted tools (anything but OpenAI Responses)
    hosted_tools: frozenset[str] = DEFAULT_HOSTED_TOOLS
    provider: str = "offline"  # the model provider, named in messages

    @property
    def all_tools(self) -> frozenset[str]:
        return self.known_tools | self.hosted_tools


def json_path(parts: Iterable[str | int]) -> str:
    path = "$"
    for part in parts:
        if isinstance(part, int):
            path += f"[{part}]"
        elif _IDENTIFIER.match(part):
            path += f".{part}"
        else:
            path += f"[{json.dumps(part)}]"
    return path


def _suggest(word: str, candidates: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, sorted(candidates), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def parse_json(text: str | bytes, *, key: str, source: str) -> tuple[Any, list[ConfigIssue]]:
    """Decode JSON text; a syntax error becomes one issue with its line and column."""
    try:
        if isinstance(text, bytes):
            text = text.decode("utf-8")
        return json.loads(text), []
    except UnicodeDecodeError as exc:
        return None, [ConfigIssue(source, "$", f"not UTF-8 text ({exc.reason} at byte {exc.start})", key=key)]
    except json.JSONDecodeError as exc:
        message = f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
        return None, [ConfigIssue(source, "$", message, key=key)]


def is_json_schema(text: str | bytes) -> bool:
    """True for a JSON Schema document (some layouts keep one next to the configs): not an agent config."""
    try:
        document = json.loads(text)
    except (ValueError, UnicodeDecodeError):
        return False
    meta = document.get("$schema") if isinstance(document, dict) else None
    return isinstance(meta, str) and "json-schema.org/" in meta


def _schema_issues(error: ValidationError, *, key: str, source: str) -> list[ConfigIssue]:
    """One schema error as people read it (several issues for several unexpected fields)."""
    parts = list(error.absolute_path)
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = set(error.schema.get("properties", {}))
        extras = sorted(set(error.instance) - allowed)
        shown = sorted(allowed - {"$schema"})
        return [
            ConfigIssue(
                source,
                json_path([*parts, extra]),
                f"unknown field '{extra}'{_suggest(extra, shown)}; allowed fields: {', '.join(shown)}",
                key=key,
            )
            for extra in extras
        ]
    if error.validator == "required":
        missing = re.match(r"'([^']+)' is a required property", error.message)
        field = missing.group(1) if missing else error.message
        return [ConfigIssue(source, json_path(parts), f"missing required field '{field}'", key=key)]
    if error.validator == "anyOf" and error.context:
        # Explain with the alternative whose type fits (a string key vs an object), not "is not of type".
        fitting = [e for e in error.context if e.validator != "type"] or error.context
        return _schema_issues(best_match(fitting), key=key, source=source)
    url_like = isinstance(error.instance, str) and _URL_LIKE.search(error.instance)
    if error.validator == "pattern" and parts and parts[0] == "mcp_servers" and url_like:
        message = (
            f"{error.instance!r} looks like a URL; configs name MCP servers defined in settings "
            "(OBO_CONSOLE_MCP_SERVERS), never URLs"
        )
        return [ConfigIssue(source, json_path(parts), message, key=key)]
    if error.validator == "uniqueItems":
        return [ConfigIssue(source, json_path(parts), "lists the same name more than once", key=key)]
    return [ConfigIssue(source, json_path(parts), error.message, key=key)]


def schema_issues(document: Any, *, key: str, source: str) -> list[ConfigIssue]:
    issues: list[ConfigIssue] = []
    errors = sorted(
        validator().iter_errors(document), key=lambda e: (list(map(str, e.absolute_path)), e.message)
    )
    for error in errors:
        issues.extend(_schema_issues(error, key=key, source=source))
    return issues


def check_document(
    document: Any, *, key: str, source: str, ctx: ValidationContext
) -> tuple[AgentConfig | None, list[ConfigIssue]]:
    """Everything about one config that does not depend on other configs. The config is returned when it
    has no errors (warnings may be present)."""
    issues = schema_issues(document, key=key, source=source)
    if not re.match(KEY_PATTERN, key):
        issues.append(
            ConfigIssue(
                source,
                "$",
                f"'{key}' cannot be an agent key: use letters, digits, '-' and '_' (at most 64, not starting "
                "with '-' or '_')",
                key=key,
            )
        )
    if not isinstance(document, dict):
        return None, issues
    issues.extend(_semantic_issues(document, key=key, source=source, ctx=ctx))
    if any(issue.severity == "error" for issue in issues):
        return None, issues
    return AgentConfig.from_document(document, key=key, source=source), issues


def _strings(document: dict[str, Any], field: str) -> list[tuple[int, str]]:
    value = document.get(field)
    if not isinstance(value, list):
        return []
    return [(i, item) for i, item in enumerate(value) if isinstance(item, str)]


def _semantic_issues(
    document: dict[str, Any], *, key: str, source: str, ctx: ValidationContext
) -> list[ConfigIssue]:
    issues: list[ConfigIssue] = []
    for i, tool in _strings(document, "tools"):
        path = f"$.tools[{i}]"
        if tool not in ctx.all_tools:
            message = f"'{tool}' is not a known tool{_suggest(tool, ctx.all_tools)}"
            issues.append(ConfigIssue(source, path, message, key=key))
        elif tool in ctx.hosted_tools and ctx.offline_model:
            model = "offline demo model" if ctx.provider == "offline" else f"{ctx.provider} model"
            message = (
                f"'{tool}' is a hosted tool that the {model} cannot run; the agent runs without it until "
                "OpenAI is the model provider (OPENAI_API_KEY / OBO_CONSOLE_MODEL_PROVIDER=openai)"
            )
            issues.append(ConfigIssue(source, path, message, severity="warning", key=key))
    for i, server in _strings(document, "mcp_servers"):
        if server not in ctx.known_mcp_servers and not _URL_LIKE.search(server):
            known = ", ".join(sorted(ctx.known_mcp_servers)) or "none"
            message = (
                f"'{server}' is not an MCP server defined in settings{_suggest(server, ctx.known_mcp_servers)}; "
                f"defined: {known} (OBO_CONSOLE_MCP_SERVERS)"
            )
            issues.append(ConfigIssue(source, f"$.mcp_servers[{i}]", message, key=key))
    # Tool names the model sees must be unique: registry tools and agents offered as tools share one namespace.
    seen: dict[str, str] = {tool: f"$.tools[{i}]" for i, tool in _strings(document, "tools")}
    for i, ref in enumerate(document.get("agents_as_tools") or []):
        if not isinstance(ref, dict) or not isinstance(ref.get("agent"), str):
            continue
        name = ref.get("tool_name") or ref["agent"]
        path = f"$.agents_as_tools[{i}]" + (".tool_name" if ref.get("tool_name") else ".agent")
        if name in seen:
            message = f"tool name '{name}' is already used at {seen[name]}; set a distinct 'tool_name'"
            issues.append(ConfigIssue(source, path, message, key=key))
        seen[name] = path
    for field in ("agents_as_tools", "handoffs"):
        targets: dict[str, int] = {}
        for i, ref in enumerate(document.get(field) or []):
            target = ref if isinstance(ref, str) else ref.get("agent") if isinstance(ref, dict) else None
            if not isinstance(target, str):
                continue
            path = f"$.{field}[{i}]" + ("" if isinstance(ref, str) else ".agent")
            if target == key:
                issues.append(ConfigIssue(source, path, f"agent '{key}' refers to itself", key=key))
            elif target in targets:
                message = f"agent '{target}' is listed twice (also at $.{field}[{targets[target]}])"
                issues.append(ConfigIssue(source, path, message, key=key))
            targets.setdefault(target, i)
    return issues


def reference_path(config: AgentConfig, target: str) -> str:
    """The JSON path of the first place ``config`` refers to agent ``target``."""
    for i, ref in enumerate(config.agents_as_tools):
        if ref.agent == target:
            return f"$.agents_as_tools[{i}].agent"
    raw = config.document.get("handoffs", [])
    for i, handoff_ref in enumerate(config.handoffs):
        if handoff_ref.agent == target:
            return f"$.handoffs[{i}]" + ("" if i < len(raw) and isinstance(raw[i], str) else ".agent")
    return "$"


def find_cycles(configs: Mapping[str, AgentConfig]) -> list[list[str]]:
    """Cycles in the "uses as tool / hands off to" graph, each as a key path ending where it began."""
    cycles: list[list[str]] = []
    seen_cycles: set[frozenset[str]] = set()
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    stack: list[str] = []

    def visit(key: str) -> None:
        state[key] = 1
        stack.append(key)
        for target in configs[key].referenced_agents:
            if target not in configs:
                continue
            if state.get(target) == 1:
                cycle = stack[stack.index(target) :] + [target]
                if frozenset(cycle) not in seen_cycles:
                    seen_cycles.add(frozenset(cycle))
                    cycles.append(cycle)
            elif state.get(target) is None:
                visit(target)
        stack.pop()
        state[key] = 2

    for key in sorted(configs):
        if key not in state:
            visit(key)
    return cycles


def cross_issues(
    configs: Mapping[str, AgentConfig], unavailable: Mapping[str, str] | None = None
) -> dict[str, list[ConfigIssue]]:
    """Errors between configs: references to agents that are not available, and cycles. ``unavailable``
    maps keys that exist but cannot be used to why (e.g. "invalid")."""
    unavailable = unavailable or {}
    found: dict[str, list[ConfigIssue]] = {}
    for key, config in sorted(configs.items()):
        for target in dict.fromkeys(config.referenced_agents):
            if target in configs:
                continue
            if target in unavailable:
                message = f"refers to agent '{target}', which is {unavailable[target]}"
            else:
                message = f"'{target}' is not a known agent{_suggest(target, configs)}"
            path = reference_path(config, target)
            found.setdefault(key, []).append(ConfigIssue(config.source, path, message, key=key))
    for cycle in find_cycles(configs):
        chain = " → ".join(cycle)
        for key, target in zip(cycle, cycle[1:], strict=False):
            config = configs[key]
            message = f"agents form a cycle ({chain}); a handoff or agent-as-tool chain must not loop back"
            found.setdefault(key, []).append(
                ConfigIssue(config.source, reference_path(config, target), message, key=key)
            )
    return found


def validate_configs(
    configs: Iterable[AgentConfig] | Mapping[str, AgentConfig],
    known_tools: set[str] | frozenset[str],
    known_mcp_servers: set[str] | frozenset[str],
    offline_model: bool,
    hosted_tools: frozenset[str] = DEFAULT_HOSTED_TOOLS,
) -> list[ConfigIssue]:
    """Check a set of configs against each other, the tool registry, the MCP servers and the model.
    Returns every issue (errors and warnings); the set is usable when none has severity "error"."""
    items = list(configs.values()) if isinstance(configs, Mapping) else list(configs)
    ctx = ValidationContext(frozenset(known_tools), frozenset(known_mcp_servers), offline_model, hosted_tools)
    issues: list[ConfigIssue] = []
    by_key: dict[str, AgentConfig] = {}
    for config in items:
        _, found = check_document(config.document, key=config.key, source=config.source, ctx=ctx)
        issues.extend(found)
        by_key[config.key] = config
    for found in cross_issues(by_key).values():
        issues.extend(found)
    return issues
