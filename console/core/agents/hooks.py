"""SDK hooks → typed events on the run's bus (``console.core.events``).

``EventHooks`` is passed as the run's hooks and to every ``Agent.as_tool`` (with ``parent`` set), so the events
of nested agent runs arrive on the same bus, each labelled with its agent. ``McpEventBridge`` turns what the
MCP server reports about a tool call — progress notifications during it, the result's ``_meta`` after it —
into ``ServerStep`` and ``SearchResults`` events. Neither holds per-run state outside the run's context.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

from agents import Agent, FunctionTool, ModelResponse, RunContextWrapper, RunHooks, Tool
from agents.items import TResponseInputItem

from console.core.agents.context import AgentContext, CallFailure
from console.core.agents.tools import tool_kind
from console.core.agents.tracing import mask, mask_text
from console.core.events import (
    AgentEnded,
    AgentStarted,
    ErrorCode,
    Event,
    FailedStep,
    HandoffOccurred,
    ModelCalled,
    Notice,
    SearchResults,
    ServerStep,
    ToolEnded,
    ToolStarted,
)
from console.core.step_up import ChallengeInvalid, is_challenge, parse_challenge

MAX_RESULT_CHARS = 4000
SERVER_FAILURE_HINT = "The MCP server reported it: check the stack's services and log, then ask again."
STEP_UP_HINT = "Sign in again with the claims challenge (multi-factor authentication), then ask again."
TOOL_ERROR_PREFIXES = ("Tool error:", "An error occurred while running the tool")


def _ctx(context: RunContextWrapper[Any] | Any) -> AgentContext | None:
    inner = getattr(context, "context", None)
    return inner if isinstance(inner, AgentContext) else None


def _publish(context: RunContextWrapper[Any], make: Any, **fields: Any) -> None:
    app = _ctx(context)
    if app is not None:
        app.bus.publish(make(turn_id=app.turn_id, account=app.account, **fields))


def tool_type(tool: Tool) -> str:
    if isinstance(tool, FunctionTool) and getattr(tool, "_is_agent_tool", False):
        return "agent"
    if getattr(tool, "_mcp_tool_binding", None) is not None:
        return "mcp"
    kind = tool_kind(tool.name)
    return kind if kind is not None else "function"


def as_text(value: Any) -> str:
    if isinstance(value, str):
        text = value
    else:
        try:
            text = json.dumps(value, default=str, ensure_ascii=False)
        except (TypeError, ValueError):
            text = str(value)
    text = mask_text(text)
    return text if len(text) <= MAX_RESULT_CHARS else text[:MAX_RESULT_CHARS] + "…"


class EventHooks(RunHooks[Any]):
    """Publishes AgentStarted/Ended, ModelCalled (usage + duration), ToolStarted/Ended (arguments, results,
    durations), HandoffOccurred. ``parent`` names the agent that called this run's agent as a tool."""

    def __init__(
        self, models: Mapping[str, tuple[str, str]] | None = None, parent: str | None = None
    ) -> None:
        self.models = models if models is not None else {}  # agent name -> (model name, provider)
        self.parent = parent
        self._started: dict[tuple[int, str], float] = {}

    def _key(self, context: RunContextWrapper[Any], name: str) -> tuple[int, str]:
        return (id(_ctx(context)), name)

    async def on_agent_start(self, context: Any, agent: Agent[Any]) -> None:
        self._started[self._key(context, "agent:" + agent.name)] = time.perf_counter()
        _publish(context, AgentStarted, agent=agent.name, parent=self.parent)

    async def on_agent_end(self, context: Any, agent: Agent[Any], output: Any) -> None:
        self._started.pop(self._key(context, "agent:" + agent.name), None)
        _publish(context, AgentEnded, agent=agent.name, output=as_text(output if output is not None else ""))

    async def on_llm_start(
        self,
        context: RunContextWrapper[Any],
        agent: Agent[Any],
        system_prompt: str | None,
        input_items: list[TResponseInputItem],
    ) -> None:
        self._started[self._key(context, "llm:" + agent.name)] = time.perf_counter()

    async def on_llm_end(
        self, context: RunContextWrapper[Any], agent: Agent[Any], response: ModelResponse
    ) -> None:
        started = self._started.pop(self._key(context, "llm:" + agent.name), None)
        model, provider = self.models.get(agent.name, (_model_name(agent), ""))
        _publish(
            context,
            ModelCalled,
            agent=agent.name,
            model=model,
            provider=provider,
            duration_ms=(time.perf_counter() - started) * 1000 if started else 0.0,
            input_tokens=response.usage.input_tokens,
            output_tokens=response.usage.output_tokens,
        )

    async def on_handoff(
        self, context: RunContextWrapper[Any], from_agent: Agent[Any], to_agent: Agent[Any]
    ) -> None:
        _publish(
            context,
            HandoffOccurred,
            agent=from_agent.name,
            from_agent=from_agent.name,
            to_agent=to_agent.name,
        )

    async def on_tool_start(self, context: RunContextWrapper[Any], agent: Agent[Any], tool: Tool) -> None:
        call_id = str(getattr(context, "tool_call_id", "") or "")
        self._started[self._key(context, "tool:" + call_id + tool.name)] = time.perf_counter()
        app = _ctx(context)
        if app is not None and call_id:
            app.tool_agents[call_id] = agent.name
        arguments = str(getattr(context, "tool_arguments", "") or "")
        _publish(
            context,
            ToolStarted,
            agent=agent.name,
            tool=tool.name,
            call_id=call_id,
            arguments=mask_text(arguments),
            tool_type=tool_type(tool),
        )

    async def on_tool_end(
        self, context: RunContextWrapper[Any], agent: Agent[Any], tool: Tool, result: object
    ) -> None:
        call_id = str(getattr(context, "tool_call_id", "") or "")
        started = self._started.pop(self._key(context, "tool:" + call_id + tool.name), None)
        text = as_text(result)
        error = text if text.startswith(TOOL_ERROR_PREFIXES) else None
        app = _ctx(context)
        if app is not None:
            # A result the MCP server flagged as an error reaches here as plain text: it is a failure all the same.
            error = error or app.server_errors.pop(call_id, None)
            app.record_outcome(tool.name, call_id, error)
        failure = (app.call_failures.pop(call_id, None) if app is not None else None) or CallFailure()
        _publish(
            context,
            ToolEnded,
            agent=agent.name,
            tool=tool.name,
            call_id=call_id,
            result=text,
            duration_ms=(time.perf_counter() - started) * 1000 if started else 0.0,
            error=error,
            tool_type=tool_type(tool),
            code=failure.code if error else None,
            http_status=failure.http_status if error else None,
            step=failure.step if error else None,
        )


def _model_name(agent: Agent[Any]) -> str:
    model = agent.model
    if isinstance(model, str):
        return model
    return str(getattr(model, "name", None) or getattr(model, "model", None) or type(model).__name__)


# ---------------------------------------------------------------------------------------------- MCP server steps

_META_KEYS = ("ran_as", "obo_claims", "steps", "cache_hit", "aadsts", "error", "step_durations_ms", "timings")


def server_meta(meta: Mapping[str, Any] | None) -> dict[str, Any]:
    """The console's part of a result ``_meta``: at the top level, or in the first nested dict that has it."""
    if not meta:
        return {}
    if any(key in meta for key in _META_KEYS):
        return dict(meta)
    for value in meta.values():
        if isinstance(value, Mapping) and any(key in value for key in _META_KEYS):
            return dict(value)
    return {}


def _steps(meta: Mapping[str, Any]) -> list[dict[str, Any]]:
    raw = meta.get("steps") or meta.get("step_durations_ms") or meta.get("timings") or []
    if isinstance(raw, Mapping):
        return [
            {"step": str(k), "duration_ms": v if isinstance(v, int | float) else None} for k, v in raw.items()
        ]
    out = []
    for item in raw if isinstance(raw, list) else []:
        if isinstance(item, Mapping):
            out.append(dict(item))
        elif isinstance(item, str):
            out.append({"step": item})
    return out


class McpEventBridge:
    """Callbacks for ``MCPServerStreamableHttp``: ``meta_resolver`` asks the server for progress on each call
    (a progress token naming the call), ``message_handler`` turns that progress into ``ServerStep`` events, and
    ``extract`` turns the result's ``_meta`` into ``ServerStep`` + ``SearchResults`` events."""

    PROGRESS_PREFIX = "obo-console:"

    def __init__(self) -> None:
        # progress token -> (context, call_id, tool name); only while the call runs.
        self._calls: dict[str, tuple[AgentContext, str, str]] = {}
        self._seen: set[tuple[str, str]] = set()  # (call_id, step) already published from progress

    def meta_resolver(self, ctx: Any) -> dict[str, Any] | None:
        app = _ctx(ctx.run_context)
        call_id = str(getattr(ctx.run_context, "tool_call_id", "") or "")
        if app is None:
            return None
        token = f"{self.PROGRESS_PREFIX}{app.turn_id}:{call_id or ctx.tool_name}"
        self._calls[token] = (app, call_id, ctx.tool_name)
        return {"progressToken": token}

    async def message_handler(self, message: Any) -> None:
        root = getattr(message, "root", message)
        if getattr(root, "method", None) != "notifications/progress":
            return
        params = getattr(root, "params", None)
        token = str(getattr(params, "progress_token", None) or getattr(params, "progressToken", "") or "")
        call = self._calls.get(token)
        if call is None:
            return
        app, call_id, tool = call
        raw = getattr(params, "message", None) or ""
        detail: dict[str, Any]
        try:
            parsed = json.loads(raw)
            detail = parsed if isinstance(parsed, dict) else {"message": raw}
        except (json.JSONDecodeError, TypeError):
            detail = {"message": raw}
        step = str(
            detail.get("step") or detail.get("message") or f"progress {getattr(params, 'progress', '')}"
        )
        self._seen.add((call_id, step))
        app.bus.publish(
            ServerStep(
                turn_id=app.turn_id,
                account=app.account,
                agent=app.tool_agents.get(call_id),
                tool=tool,
                call_id=call_id,
                step=step,
                status=str(detail.get("status", "progress")),
                duration_ms=_float(detail.get("duration_ms")),
                detail=mask({k: v for k, v in detail.items() if k not in ("step", "status", "duration_ms")}),
            )
        )

    def extract(self, ctx: Any) -> Mapping[str, Any] | None:
        """``custom_data_extractor``: publish what ``_meta`` says; return it as the tool item's custom data."""
        app = _ctx(ctx.run_context)
        call_id = str(getattr(ctx.run_context, "tool_call_id", "") or "")
        for token in [t for t, c in self._calls.items() if c[1] == call_id and c[0] is app]:
            self._calls.pop(token, None)
        meta = server_meta(ctx.result_meta)
        if app is None:
            return None
        agent = app.tool_agents.get(call_id)
        events: list[Event] = []
        for step in _steps(meta):
            name = str(step.get("step") or step.get("name") or "step")
            if (call_id, name) in self._seen:
                self._seen.discard((call_id, name))
                continue  # already shown live from its progress notification
            events.append(
                ServerStep(
                    turn_id=app.turn_id,
                    account=app.account,
                    agent=agent,
                    tool=ctx.tool_name,
                    call_id=call_id,
                    step=name,
                    status=str(step.get("status", "ok")),
                    duration_ms=_float(step.get("duration_ms")),
                    detail=mask(
                        {k: v for k, v in step.items() if k not in ("step", "name", "status", "duration_ms")}
                    ),
                )
            )
        failed_step = next(
            (
                str(s.get("step") or s.get("name"))
                for s in _steps(meta)
                if str(s.get("status")) in ("error", "failed")
            ),
            None,
        )
        structured = ctx.structured_content or {}
        documents = structured.get("documents") if isinstance(structured, Mapping) else None
        if documents is not None or meta or ctx.is_error:
            error = meta.get("error") or (
                structured.get("error") if isinstance(structured, Mapping) else None
            )
            if ctx.is_error and not error:
                error = as_text(ctx.tool_output)
            events.append(
                SearchResults(
                    turn_id=app.turn_id,
                    account=app.account,
                    agent=agent,
                    call_id=call_id,
                    query=str(ctx.arguments.get("query", "*")),
                    ran_as=mask(dict(meta.get("ran_as") or {})),
                    documents=[dict(d) for d in documents or [] if isinstance(d, Mapping)],
                    obo_claims=mask(dict(meta.get("obo_claims") or {})),
                    cache_hit=meta.get("cache_hit"),
                    error=mask_text(str(error)) if error else None,
                    aadsts=meta.get("aadsts"),
                    step=failed_step if error else None,
                )
            )
        if (
            ctx.is_error
        ):  # the SDK hands a flagged result on as plain output: remember it failed (see on_tool_end)
            app.server_errors[call_id] = mask_text(str(meta.get("error") or as_text(ctx.tool_output)))
            app.failure_hints[call_id] = SERVER_FAILURE_HINT
            app.call_failures[call_id] = CallFailure(code=meta.get("aadsts"), step=failed_step)
            if is_challenge(structured):
                events.extend(_take_challenge(app, call_id, structured))
        for event in events:
            app.bus.publish(event)
        return {"server_meta": mask(meta)} if meta else None


def _take_challenge(app: AgentContext, call_id: str, structured: Mapping[str, Any]) -> list[Event]:
    """A claims challenge on the call's result: remember it for the step-up, or say why it cannot be used."""
    try:
        app.step_up = parse_challenge(structured)
    except ChallengeInvalid as exc:
        message = f"the MCP server sent a claims challenge the console cannot use: {exc}"
        return [
            Notice(turn_id=app.turn_id, account=app.account, level="warning", message=message, source="auth")
        ]
    app.failure_hints[call_id] = STEP_UP_HINT
    app.call_failures[call_id] = CallFailure(code=ErrorCode.INSUFFICIENT_CLAIMS, step=FailedStep.OBO_EXCHANGE)
    return []


def _float(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
