"""`obo-console server`: the bundled MCP server in the foreground. Local mode also runs the local identity platform
and the local search service (each on its own port and event loop) and writes the local stack state file once all
of them answer; Azure mode runs only the MCP server against Entra ID and Azure AI Search."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from typing import Any

import httpx2

from console.commands import settings_overrides
from console.core.settings import Settings, load_settings
from mcp_server.errors import UserError
from mcp_server.processes import pid_alive
from mcp_server.server.app import create_server
from mcp_server.server.config import ServerConfig, obo_cache_options
from mcp_server.server.multiworker import WorkerPool
from mcp_server.server.runner import serve_threaded
from mcp_server.stack import LocalStack, StackPorts


def _parent_gone(parent_pid: int | None) -> bool:
    """True once the console that launched this server has died (even by SIGKILL, which it cannot trap).
    No parent pid (unset, or not a real pid) means nobody is watched."""
    return parent_pid is not None and parent_pid > 0 and not pid_alive(parent_pid)


def _wait_for_signal(parent_pid: int | None = None) -> int:
    stop = threading.Event()
    received: list[int] = []

    def handler(signum: int, frame: Any) -> None:
        received.append(signum)
        stop.set()

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        while not stop.wait(0.5):
            if _parent_gone(parent_pid):
                _say(f"obo-console: the console that launched this server (pid {parent_pid}) is gone.")
                break
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
    return received[0] if received else 0


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    for name in ("port", "identity_port", "search_port", "calculator_port"):
        value = getattr(args, name, None)
        if value is not None and not 0 <= value <= 65535:
            raise UserError(
                f"--{name.replace('_', '-')} {value} is not a port.", hint="Use 0–65535 (0 = any free port)."
            )
    workers = getattr(args, "workers", None)
    workers = 1 if workers is None else workers
    if not 1 <= workers <= 64:
        raise UserError(
            f"--workers {workers} is out of range.", hint="Use 1–64 (one per CPU core is typical)."
        )
    settings = load_settings(
        **settings_overrides(args),
        mcp_host=args.host,
        mcp_port=args.port,
        identity_port=args.identity_port,
        search_port=args.search_port,
        calculator_port=args.calculator_port,
    )
    if settings.mode == "azure":
        return _run_azure(settings, workers)
    return _run_local(settings, workers)


def _run_local(settings: Settings, workers: int = 1) -> int:
    from console.core.agents.providers import calculator_model  # deferred: the Agents SDK, local mode only

    stack = LocalStack(
        host=settings.mcp_host,
        ports=StackPorts(
            identity=settings.identity_port,
            search=settings.search_port,
            mcp=settings.mcp_port,
            calculator=settings.calculator_port,
        ),
        state_file=settings.effective_state_file(),
        calculator_model=calculator_model(settings),
        search_auth=settings.search_auth,
        search_api_version=settings.search_api_version,
        workers=workers,
        server_overrides=obo_cache_options(settings),
    )
    _say("obo-console: starting the local stack…")
    try:
        state = stack.start()
    except OSError as exc:
        raise UserError(
            str(exc), hint="Free the port, or pick others with --port/--identity-port/--search-port."
        ) from exc
    except (RuntimeError, ValueError) as exc:
        raise UserError(f"The local stack did not start: {exc}") from exc
    try:
        users = ", ".join(u.username for u in state.users)
        _say(
            f"OBO Console local stack is running (pid {state.pid}).\n"
            f"  MCP server         {state.mcp_url} ({workers} worker{'s' if workers > 1 else ''})\n"
            f"  identity platform  {state.authority}\n"
            f"  search service     {state.search_endpoint} (index {state.search_index})\n"
            f"  calculator agent   {state.calculator_url}\n"
            f"  demo users         {users}\n"
            f"  state file         {stack.state_file}\n"
            "Sign in with `obo-console login --as alice`. Press Ctrl+C to stop."
        )
        signum = _wait_for_signal(settings.parent_pid)
        _say(f"obo-console: stopping ({signal.Signals(signum).name if signum else 'done'})…")
    finally:
        stack.stop()
    _say("obo-console: local stack stopped.")
    return 0


def _run_azure(settings: Settings, workers: int = 1) -> int:
    config = ServerConfig.from_settings(settings)
    threaded: Any
    try:
        threaded = (
            serve_threaded(create_server(config)) if workers == 1 else WorkerPool(config, workers).start()
        )
    except OSError as exc:
        raise UserError(str(exc), hint="Free the port, or pick another with --port.") from exc
    try:
        health = httpx2.get(f"{threaded.base_url}/healthz", timeout=30.0, trust_env=False).json()
        _say(
            f"OBO Console MCP server (Azure mode) on {config.mcp_url(threaded.port)}, {workers} worker(s)\n"
            f"  authority          {config.authority}\n"
            f"  search             {config.search_endpoint} (index {config.search_index})\n"
            f"  readiness          {health.get('status')}\n"
            "Press Ctrl+C to stop."
        )
        _wait_for_signal(settings.parent_pid)
    finally:
        threaded.stop()
    return 0
