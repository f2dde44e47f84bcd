"""The remote agent: a calculator agent served over HTTP (``POST /run`` {"input": "..."} → {"output": ...}).

It is an agent of its own — its own ``Agent``, the model its host hands it (the console's ``obo-console server``
passes the offline demo model unless a provider is configured: ``console.core.agents.providers.calculator_model``)
and a ``calculate`` tool that evaluates arithmetic safely (no ``eval``), within limits
(``mcp_server.arithmetic``) and in worker processes killed at a time limit (``mcp_server.workers``): an expression
over a limit ends the run with HTTP 400 naming the limit, and no expression can stall the services that share this
process. The console reaches it
through the registry tool ``ask_calculator``: a remote agent used as a tool, unlike ``Agent.as_tool`` which
runs the other agent in-process.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any

from agents import Agent, Model, RunConfig, RunContextWrapper, Runner, function_tool
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from mcp_server.arithmetic import CalculationRefused, Limits, evaluate
from mcp_server.localcloud.serve import ThreadedServer
from mcp_server.redact import redact
from mcp_server.workers import EvaluatorPool

__all__ = ["CalculationRefused", "Limits", "create_calculator_app", "evaluate", "serve_calculator"]

MAX_INPUT = 2000
MAX_BODY = 64 * 1024  # bytes of a /run request body: read no further, so a huge body costs nothing


async def _json_body(request: Request) -> Any:
    """The request's JSON, read at most ``MAX_BODY`` bytes far; ``CalculationRefused`` when it is longer."""
    too_large = CalculationRefused(
        "body_too_large", f"the request body is larger than {MAX_BODY} bytes", {"max_bytes": MAX_BODY}
    )
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY:
        raise too_large
    data = b""
    async for chunk in request.stream():
        data += chunk
        if len(data) > MAX_BODY:
            raise too_large
    return json.loads(data)


def calculate_tool(pool: EvaluatorPool) -> Callable[[str], Coroutine[Any, Any, str]]:
    """The ``calculate`` tool: evaluated in one of ``pool``'s worker processes, never on this server's thread."""

    async def calculate(expression: str) -> str:
        """Calculate an arithmetic expression with + - * / % ** and parentheses, e.g. 12 * (3 + 4).

        Args:
            expression: The arithmetic expression to calculate.
        """
        return f"{expression.strip()} = {await pool.evaluate_async(expression)}"

    return calculate


def _tool_failure(ctx: RunContextWrapper[Any], error: Exception) -> str:
    """A refused expression ends the run (the service answers 400 naming the limit); anything else goes back to
    the model as a tool error: the reason, never a traceback or a secret."""
    if isinstance(error, CalculationRefused):
        raise error
    return f"Tool error: {redact(str(error)) or type(error).__name__}"


def _refusal(exc: BaseException) -> CalculationRefused | None:
    """The refusal that ended a run: the SDK wraps a tool's exception, so look down the cause chain."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, CalculationRefused):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def build_calculator_agent(pool: EvaluatorPool, model: Model) -> Agent[Any]:
    return Agent(
        name="Calculator Agent",
        instructions="You calculate. Use the calculate tool for every arithmetic question and report its result.",
        model=model,
        tools=[function_tool(calculate_tool(pool), failure_error_function=_tool_failure)],
    )


def create_calculator_app(model: Model, pool: EvaluatorPool | None = None) -> Starlette:
    """The service, its agent running on ``model``; its worker processes stop with it (a ``pool`` passed in is the
    caller's to close)."""
    own_pool = pool is None
    workers = pool or EvaluatorPool()
    agent = build_calculator_agent(workers, model)
    # Its runs are the remote service's own business: no spans in the console's local trace file.
    run_config = RunConfig(workflow_name="calculator", tracing_disabled=True)

    async def run(request: Request) -> JSONResponse:
        try:
            body = await _json_body(request)
        except CalculationRefused as too_large:
            return JSONResponse(too_large.body(), status_code=413)
        except (ValueError, RecursionError):  # not JSON, or nested deeper than the parser goes
            return JSONResponse({"error": 'the body must be JSON: {"input": "12 * 7"}'}, status_code=400)
        text = body.get("input") if isinstance(body, dict) else None
        if not isinstance(text, str) or not text.strip():
            return JSONResponse(
                {"error": '"input" must be a non-empty string, e.g. "12 * 7"'}, status_code=400
            )
        if len(text) > MAX_INPUT:
            too_long = CalculationRefused(
                "input_too_long", f'"input" is longer than {MAX_INPUT} characters', {"max_chars": MAX_INPUT}
            )
            return JSONResponse(too_long.body(), status_code=400)
        try:
            result = await Runner.run(agent, text, run_config=run_config, max_turns=4)
        except Exception as exc:
            refused = _refusal(exc)
            if refused is None:
                raise
            status = 429 if refused.code == "busy" else 400
            headers = {"Retry-After": "1"} if status == 429 else None
            return JSONResponse(refused.body(), status_code=status, headers=headers)
        return JSONResponse({"output": str(result.final_output), "agent": agent.name})

    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok", "agent": agent.name})

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            if own_pool:
                workers.close()

    routes = [Route("/run", run, methods=["POST"]), Route("/healthz", healthz, methods=["GET"])]
    return Starlette(routes=routes, lifespan=lifespan)


def serve_calculator(
    model: Model,
    host: str = "127.0.0.1",
    port: int = 0,
    pool: EvaluatorPool | None = None,
) -> ThreadedServer:
    """Start the calculator, its agent on ``model``, on its own thread and event loop (port 0: any free port; read
    ``.base_url``)."""
    app = create_calculator_app(model, pool)
    return ThreadedServer(app, name="calculator", host=host, port=port).start()
