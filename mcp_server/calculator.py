"""The seed's remote agent: a calculator agent served over HTTP (``POST /run`` {"input": "..."} → {"output": ...}).

It is an agent of its own — its own ``Agent``, its own model (the offline demo model unless a provider is
configured) and a ``calculate`` tool that evaluates arithmetic safely (no ``eval``). The console reaches it
through the registry tool ``ask_calculator``: a remote agent used as a tool, unlike ``Agent.as_tool`` which
runs the other agent in-process.
"""

from __future__ import annotations

import ast
import operator
from typing import Any

from agents import Agent, RunConfig, Runner, function_tool
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from console.core.settings import Settings, load_settings
from mcp_server.localcloud.serve import ThreadedServer

MAX_INPUT = 2000
_OPS: dict[type, Any] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow,
    ast.USub: operator.neg, ast.UAdd: operator.pos,
}


def evaluate(expression: str) -> float | int:
    """Evaluate + - * / // % ** and parentheses on numbers; anything else is rejected with ValueError."""
    text = expression.replace("×", "*").replace("÷", "/").replace("^", "**").replace(",", "")
    text = text.replace(" x ", " * ")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise ValueError(f"not an arithmetic expression: {expression!r}") from exc

    def walk(node: ast.AST) -> float | int:
        if isinstance(node, ast.Expression):
            return walk(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, int | float) and not isinstance(node.value, bool):
            return node.value
        if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
            left, right = walk(node.left), walk(node.right)
            if isinstance(node.op, ast.Pow) and abs(right) > 100:
                raise ValueError("exponent too large")
            return _OPS[type(node.op)](left, right)
        if isinstance(node, ast.UnaryOp) and type(node.op) in _OPS:
            return _OPS[type(node.op)](walk(node.operand))
        raise ValueError(f"not allowed in a calculation: {ast.dump(node)[:40]}")

    try:
        value = walk(tree)
    except ZeroDivisionError as exc:
        raise ValueError("division by zero") from exc
    return int(value) if isinstance(value, float) and value.is_integer() else value


async def calculate(expression: str) -> str:
    """Calculate an arithmetic expression with + - * / % ** and parentheses, e.g. 12 * (3 + 4).

    Args:
        expression: The arithmetic expression to calculate.
    """
    return f"{expression.strip()} = {evaluate(expression)}"


def build_calculator_agent(settings: Settings | None = None) -> Agent[Any]:
    from console.core.agents.providers import ModelResolver
    from console.core.agents.tools import tool_error

    choice = ModelResolver(settings or load_settings()).for_config("gpt-4o-mini")
    return Agent(
        name="Calculator Agent",
        instructions="You calculate. Use the calculate tool for every arithmetic question and report its result.",
        model=choice.model,
        tools=[function_tool(calculate, failure_error_function=tool_error)],
    )


def create_calculator_app(settings: Settings | None = None) -> Starlette:
    agent = build_calculator_agent(settings)
    # Its runs are the remote service's own business: no spans in the console's local trace file.
    run_config = RunConfig(workflow_name="calculator", tracing_disabled=True)

    async def run(request: Request) -> JSONResponse:
        try:
            body = await request.json()
        except ValueError:
            return JSONResponse({"error": "the body must be JSON: {\"input\": \"12 * 7\"}"}, status_code=400)
        text = body.get("input") if isinstance(body, dict) else None
        if not isinstance(text, str) or not text.strip():
            return JSONResponse({"error": "\"input\" must be a non-empty string, e.g. \"12 * 7\""}, status_code=400)
        if len(text) > MAX_INPUT:
            return JSONResponse({"error": f"\"input\" is longer than {MAX_INPUT} characters"}, status_code=400)
        result = await Runner.run(agent, text, run_config=run_config, max_turns=4)
        return JSONResponse({"output": str(result.final_output), "agent": agent.name})

    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok", "agent": agent.name})

    return Starlette(routes=[Route("/run", run, methods=["POST"]), Route("/healthz", healthz, methods=["GET"])])


def serve_calculator(host: str = "127.0.0.1", port: int = 0, settings: Settings | None = None) -> ThreadedServer:
    """Start the calculator on its own thread and event loop (port 0: any free port; read ``.base_url``)."""
    return ThreadedServer(create_calculator_app(settings), name="calculator", host=host, port=port).start()
