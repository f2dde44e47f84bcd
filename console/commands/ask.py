"""`obo-console ask "QUESTION" [--agent NAME] [--json] [--user NAME]`: one headless turn as the signed-in user.

Prints the event stream (human lines on stderr, the answer on stdout) or, with ``--json``, JSON lines on stdout
(one per event, then one ``{"kind": "answer", ...}``). Exits non-zero with a clear message when the user is not
signed in, the server is down, the configs are invalid, or the turn fails.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def register(sub: argparse._SubParsersAction, name: str) -> None:
    parser = sub.add_parser(
        name,
        help="ask the agents one question (headless; for scripts and CI)",
        description="Run one turn with the agents as the signed-in user and print its events and the answer.",
    )
    parser.add_argument("question", help="what to ask")
    parser.add_argument("--agent", metavar="NAME", help="the agent to ask (config key or name; default: the main agent)")
    parser.add_argument("--json", action="store_true", help="print JSON lines (events, then the answer) on stdout")
    parser.add_argument("--user", metavar="NAME", help="the signed-in account to ask as (default: the current one)")
    parser.add_argument("--quiet", action="store_true", help="print only the answer (human mode)")


def _token_provider(settings: Any, user: str | None) -> tuple[str, Any]:
    """(account username, async provider of a fresh access token) — raises NotSignedIn / StackNotRunning."""
    from console.core.auth import AuthManager

    manager = AuthManager.from_settings(settings)
    account = manager.find_account(user) if user else manager.require_account()
    manager.acquire_token(account)  # fail now, clearly, rather than inside the first MCP request

    async def provide() -> Any:
        return await manager.acquire_token_async(account)

    return account.username, provide


def run(args: argparse.Namespace) -> int:
    import asyncio

    from console.core.agents.runner import AgentRunner
    from console.core.agents.tracing import install_tracing
    from console.core.configs.open_store import open_store
    from console.core.errors import UserError
    from console.core.events import EventBus
    from console.core.printer import EventPrinter
    from console.core.settings import load_settings

    settings = load_settings()
    question = args.question.strip()
    if not question:
        raise UserError("The question is empty.", hint='Ask something, e.g. obo-console ask "what time is it?"')
    store = open_store(settings)
    try:
        configs = store.load_all()
    finally:
        store.close()
    if configs.errors:
        lines = "\n".join(f"  {issue}" for issue in configs.errors)
        raise UserError(f"Invalid agent configs:\n{lines}", hint="Fix them (`obo-console configs validate`), then ask again.")
    served = configs.configs
    from console.core.agents.factory import default_main_key

    start = _agent_key(served, args.agent) if args.agent else default_main_key(served)
    served = {key: served[key] for key in _reachable(served, start)}  # build (and warn about) only what can run
    target = _connect_target(settings, args.connect) if getattr(args, "connect", None) else None
    account, provider = None, None
    if any(cfg.mcp_servers for cfg in served.values()):  # only then is a signed-in user needed
        account, provider = _token_provider(settings, args.user)

    bus = EventBus()
    printer = EventPrinter(json_lines=args.json, verbose=not args.quiet)
    bus.subscribe(printer.handle)
    install_tracing(settings)
    runner = AgentRunner(
        settings=settings, configs=served, bus=bus, account=account, token_provider=provider, main_key=start, require_mcp=True,
        mcp_target=target,
    )
    if not args.json:
        who = f" as {account}" if account else ""
        print(f"asking {runner.active_agent.name}{who} — model: {runner.model_label}", file=sys.stderr)
    result = asyncio.run(runner.run_turn(question))
    if args.json:
        answer = {
            "kind": "answer",
            "output": result.output,
            "agent": result.agent,
            "agent_name": result.agent_name,
            "model": runner.graph.model_label(result.agent),
            "account": account,
            "duration_ms": round(result.duration_ms, 3),
            "error": result.error,
        }
        print(json.dumps(answer, ensure_ascii=False))
    if result.error:
        raise UserError(f"The turn failed: {result.error}")
    return 0


def _connect_target(settings: Any, url: str) -> Any:
    """``--connect URL``: the server every config's MCP server name stands for, once the trust rules accept it
    (no prompt here: an origin not trusted yet is refused, naming the setting to add)."""
    from console.core.agents.mcp_link import McpTarget
    from console.core.mcp_trust import headless_connect

    return McpTarget(*headless_connect(settings, url))


def _agent_key(configs: Any, wanted: str) -> str:
    if wanted in configs:
        return str(wanted)
    for key, cfg in configs.items():
        if cfg.name.lower() == wanted.lower():
            return str(key)
    from console.core.errors import UserError

    raise UserError(f"There is no agent {wanted!r}.", hint=f"Known agents: {', '.join(sorted(configs))}.")


def _reachable(configs: Any, start: str) -> list[str]:
    """The start agent and every agent it can call as a tool or hand off to, transitively."""
    seen: list[str] = []
    todo = [start]
    while todo:
        key = todo.pop()
        if key in seen or key not in configs:
            continue
        seen.append(key)
        todo.extend(configs[key].referenced_agents)
    return seen
