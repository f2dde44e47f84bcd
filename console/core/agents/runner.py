"""``AgentRunner``: one account's conversation with the agent graph. Free of any UI: the TUI and ``ask`` use it.

It holds the history (``to_input_list``), the main agent and the active agent (tracked from ``last_agent``, so
after a handoff the next turn goes to the agent that took over), runs a turn streamed and publishes every step
on its ``EventBus``, and can cancel a running turn, reset, or go back to the main agent. With ``LiveConfigs`` it
rebuilds the graph whenever the configs change; the rebuilt graph serves from the next turn on.

The account's MCP connection (``McpLink``) is opened by the first turn that needs it and kept for the next ones;
``close()`` / ``aclose()`` end it.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from agents import Agent, RunConfig, Runner
from agents.exceptions import AgentsException, MaxTurnsExceeded
from agents.items import TResponseInputItem
from agents.stream_events import AgentUpdatedStreamEvent, RawResponsesStreamEvent
from openai.types.responses import ResponseTextDeltaEvent

from console.core.agents.context import AgentContext, CallFailure, ToolFailure
from console.core.agents.factory import AgentGraph, build_graph
from console.core.agents.mcp_link import McpLink, McpTarget, TokenProvider
from console.core.agents.providers import ModelResolver
from console.core.agents.tracing import ensure_tracing, mask_text
from console.core.configs.model import AgentConfig
from console.core.events import ErrorCode, EventBus, FailedStep, Notice, TextDelta, TurnEnded, TurnStarted
from console.core.settings import Settings
from console.core.step_up import ClaimsChallenge
from mcp_server.errors import UserError
from mcp_server.stack_state import StateFileError, read_state

SOURCE = "agents"


def calculator_url(settings: Settings) -> str:
    """The remote calculator agent: the running stack's ``calculator_url`` when it names one, else the port."""
    try:
        state = read_state(settings.effective_state_file())
    except StateFileError:
        state = None
    url = state.calculator_url if state is not None else None
    return url or f"http://127.0.0.1:{settings.calculator_port}"


@dataclass(frozen=True)
class TurnResult:
    turn_id: str
    output: str
    agent: str  # the agent that answered (key)
    agent_name: str
    duration_ms: float
    error: str | None = None
    cancelled: bool = False
    tool_failure: ToolFailure | None = None  # a tool whose last call failed: the answer lacks its result
    step_up: ClaimsChallenge | None = None  # Conditional Access asked for more: sign in again, then retry

    @property
    def failed(self) -> bool:
        """The turn ended in an error: the run failed, or it answered without a tool's result."""
        return self.error is not None or self.tool_failure is not None


class AgentRunner:
    """Usage::

    runner = AgentRunner(settings=settings, configs=live, bus=bus, account="alice@...", token_provider=get)
    result = await runner.run_turn("what's the weather in Paris?")   # events go to bus meanwhile
    runner.active_key            # "conversation", or e.g. "simulator" after a handoff
    runner.back_to_main(); runner.reset(); runner.cancel(); runner.close()   # or: await runner.aclose()
    """

    def __init__(
        self,
        *,
        settings: Settings,
        configs: Any,  # LiveConfigs (live reload) or a Mapping[str, AgentConfig]
        bus: EventBus | None = None,
        account: str | None = None,
        token_provider: TokenProvider | None = None,
        main_key: str | None = None,
        calculator: str | None = None,
        mcp_target: McpTarget | None = None,
        max_turns: int = 12,
        require_mcp: bool = False,
    ) -> None:
        self.settings = settings
        ensure_tracing(settings)  # never the SDK's default exporter (it would POST traces to OpenAI)
        self.bus = bus or EventBus()
        self.account = account
        self.max_turns = max_turns
        self.require_mcp = require_mcp
        self.calculator_url = calculator or calculator_url(settings)
        self.mcp = McpLink(settings, token_provider, target=mcp_target)
        self._resolver = ModelResolver(settings)
        self._configs = configs
        self._wanted_main = main_key
        self._lock = threading.Lock()
        self._graph = self._build(self._current_configs())
        self.main_key = self._graph.main_key
        self.active_key = self.main_key
        self.history: list[TResponseInputItem] = []
        self.rebuilds = 0
        self._task: asyncio.Task[Any] | None = None
        self._streaming: Any = None
        self._unsubscribe = (
            configs.subscribe(self._on_configs_changed) if hasattr(configs, "subscribe") else None
        )
        for warning in self._graph.warnings:
            self.bus.publish(Notice(account=self.account, level="warning", message=warning, source=SOURCE))

    # -- graph ---------------------------------------------------------------------------------------------------
    def _current_configs(self) -> Mapping[str, AgentConfig]:
        current = getattr(self._configs, "current", None)
        return current.configs if current is not None else dict(self._configs)

    def _build(self, configs: Mapping[str, AgentConfig], mcp: McpLink | None | bool = True) -> AgentGraph:
        # The wanted main agent must exist at start; after a reload that removed it, fall back to the default.
        keep = self._wanted_main in configs or not hasattr(self, "_graph")
        main = self._wanted_main if keep else None
        return build_graph(
            configs,
            settings=self.settings,
            main_key=main,
            mcp=self.mcp if mcp is True else (mcp or None),
            resolver=self._resolver,
        )

    @property
    def graph(self) -> AgentGraph:
        with self._lock:
            return self._graph

    def _on_configs_changed(self, change: Any) -> None:
        """Runs on the store's watcher thread: rebuild now, serve it from the next turn on."""
        try:
            graph = self._build(change.configs.configs)
        except Exception as exc:  # keep the last good graph serving
            self.bus.publish(
                Notice(
                    account=self.account, level="error", message=f"agents not rebuilt: {exc}", source=SOURCE
                )
            )
            return
        with self._lock:
            self._graph = graph
            self.main_key = graph.main_key
            if self.active_key not in graph.agents:
                self.active_key = graph.main_key
            self.rebuilds += 1
        changed = ", ".join(sorted(getattr(change, "changed", ()))) or "none"
        self.bus.publish(
            Notice(
                account=self.account,
                level="info",
                message=f"agents rebuilt (changed: {changed})",
                source=SOURCE,
            )
        )
        for warning in graph.warnings:
            self.bus.publish(Notice(account=self.account, level="warning", message=warning, source=SOURCE))

    # -- state ---------------------------------------------------------------------------------------------------
    @property
    def active_agent(self) -> Agent[Any]:
        graph = self.graph
        return graph.agents.get(self.active_key, graph.main)

    @property
    def model_label(self) -> str:
        """Which model answers for the active agent, e.g. ``offline-demo (offline)``."""
        return self.graph.model_label(self.active_key)

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def back_to_main(self) -> None:
        """Make the main agent answer the next turn (the UI's "back to main" action)."""
        if self.active_key != self.main_key:
            previous = self.active_agent.name
            self.active_key = self.main_key
            self.bus.publish(
                Notice(
                    account=self.account,
                    message=f"back to {self.graph.main.name} (from {previous})",
                    source=SOURCE,
                )
            )

    def reset(self) -> None:
        """Forget the conversation and go back to the main agent."""
        self.history = []
        self.active_key = self.main_key

    def cancel(self) -> bool:
        """Stop the running turn (its partial output is discarded; the history stays as it was)."""
        if self._streaming is not None:
            self._streaming.cancel()
        if self._task is not None and not self._task.done():
            self._task.cancel()
            return True
        return False

    def close(self) -> None:
        """Stop following config changes and close the MCP connection (its own task cleans up, on its loop)."""
        self._stop_following_configs()
        self.mcp.close()

    async def aclose(self) -> None:
        """``close``, waiting until the MCP connection is closed."""
        self._stop_following_configs()
        await self._safe_cleanup()

    def _stop_following_configs(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None

    # -- turns ---------------------------------------------------------------------------------------------------
    async def run_turn(self, text: str, *, retry_of: str | None = None) -> TurnResult:
        """Run one turn with the active agent, publishing events; returns when the turn is over. ``retry_of``:
        the turn this one runs again (after a step-up)."""
        if self.running:
            raise UserError("A turn is already running.", hint="Wait for it, or cancel it first.")
        self._task = asyncio.create_task(self._run(text, retry_of))
        try:
            return await asyncio.shield(self._task)
        except asyncio.CancelledError:
            if self._task.done() and not self._task.cancelled():
                return self._task.result()
            self._task.cancel()
            raise

    async def _run(self, text: str, retry_of: str | None = None) -> TurnResult:
        turn_id = uuid.uuid4().hex[:12]
        graph = self.graph
        agent = graph.agents.get(self.active_key, graph.main)
        started = time.perf_counter()
        self.bus.publish(
            TurnStarted(turn_id=turn_id, agent=agent.name, account=self.account, text=text, retry_of=retry_of)
        )
        context = AgentContext(
            bus=self.bus, turn_id=turn_id, account=self.account, calculator_url=self.calculator_url
        )
        output, error, cancelled, last = "", None, False, agent
        try:
            if self.mcp.servers:
                try:
                    await self.mcp.ensure_connected()  # the account's connection, kept across turns
                except Exception as exc:
                    refusal = self.mcp.refusal  # the library says only "Server returned an error response"
                    if refusal is not None:
                        message = (
                            f"The MCP server at {self.mcp.target.url} refused the token: {refusal.detail()}."
                        )
                        hint = (
                            "Sign in again (the token may have expired), and check that the account may use "
                            "the API (its scope)."
                        )
                        failure = refusal.failure()
                    else:
                        message = f"The MCP server at {self.mcp.target.url} is not reachable ({_short(exc)})."
                        hint = "Start it with `obo-console server`, then try again."
                        failure = CallFailure(code=ErrorCode.MCP_UNREACHABLE, step=FailedStep.CONNECT)
                    if self.require_mcp:
                        raise UserError(message, hint=hint) from exc
                    self.bus.publish(
                        Notice(
                            account=self.account,
                            level="error",
                            message=message + " Its tools are unavailable this turn.",
                            source=SOURCE,
                            code=failure.code,
                            http_status=failure.http_status,
                            step=failure.step,
                        )
                    )
                    graph = self._build(self._current_configs(), mcp=False)
                    agent = graph.agents.get(self.active_key, graph.main)
            result = Runner.run_streamed(
                agent,
                [*self.history, {"role": "user", "content": text}],
                context=context,
                hooks=graph.hooks,
                max_turns=self.max_turns,
                run_config=RunConfig(workflow_name="obo-console turn", group_id=self.account),
            )
            self._streaming = result
            current = agent.name
            async for event in result.stream_events():
                if context.step_up is not None and not _was_cancelled(result):
                    result.cancel()  # the answer would lack the documents: stop here and step up instead
                if isinstance(event, AgentUpdatedStreamEvent):
                    current = event.new_agent.name
                elif isinstance(event, RawResponsesStreamEvent) and isinstance(
                    event.data, ResponseTextDeltaEvent
                ):
                    self.bus.publish(
                        TextDelta(
                            turn_id=turn_id, account=self.account, agent=current, delta=event.data.delta
                        )
                    )
            if context.step_up is not None:
                error = step_up_message(context.step_up)  # the history stays: the turn runs again
            elif result.is_complete and result.final_output is not None and not _was_cancelled(result):
                output = str(result.final_output)
                self.history = result.to_input_list()
                last = result.last_agent
                self.active_key = graph.key_of(last) or graph.main_key
            else:
                cancelled = True
                error = "cancelled"
        except asyncio.CancelledError:
            cancelled, error = True, "cancelled"
        except UserError as exc:
            error = exc.message
            raise
        except MaxTurnsExceeded:
            error = f"The agents did not finish within {self.max_turns} steps."
        except AgentsException as exc:
            error = mask_text(str(exc))
        except Exception as exc:  # provider/network failures: report, keep the conversation
            error = f"{type(exc).__name__}: {mask_text(str(exc))}"
        finally:
            self._streaming = None
            duration = (time.perf_counter() - started) * 1000
            self.bus.publish(
                TurnEnded(
                    turn_id=turn_id,
                    account=self.account,
                    agent=last.name,
                    output=output,
                    duration_ms=duration,
                    error=error,
                    last_agent=last.name,
                )
            )
        return TurnResult(
            turn_id=turn_id,
            output=output,
            agent=graph.key_of(last) or graph.main_key,
            agent_name=last.name,
            duration_ms=duration,
            error=error,
            cancelled=cancelled,
            tool_failure=None if error else context.failed_tool(),
            step_up=context.step_up,
        )

    async def _safe_cleanup(self) -> None:
        try:
            await self.mcp.cleanup()
        except Exception as exc:  # a broken connection must not mask the turn's own outcome
            self.bus.publish(
                Notice(
                    account=self.account,
                    level="warning",
                    message=f"MCP cleanup: {_short(exc)}",
                    source=SOURCE,
                )
            )


def step_up_message(challenge: ClaimsChallenge) -> str:
    """The turn's error when Conditional Access stopped it."""
    return (
        f"Conditional Access requires {challenge.required} for {challenge.resource} "
        f"(policy {challenge.policy}, AADSTS{challenge.aadsts or '?'}): no documents were returned."
    )


def _was_cancelled(result: Any) -> bool:
    return getattr(result, "_cancel_mode", "none") != "none"


def _short(exc: BaseException) -> str:
    if isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        return _short(exc.exceptions[0])
    text = mask_text(str(exc)).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
