"""`obo-console ask "QUESTION" [--agent NAME] [--json] [--user NAME]`: one headless turn as the signed-in user.

Prints the event stream (human lines on stderr, the answer on stdout) or, with ``--json``, JSON lines on stdout
(one per event, then one ``{"kind": "answer", ...}``). Exit codes: 0 answered; 1 the turn could not start (not
signed in, no stack, the asked agent or one it depends on has an invalid config, ...); 3 the turn ended in an
error (the run failed, or a tool's last call failed, e.g. the stack died mid-turn); 4 Conditional Access asked
for more (a claims challenge: MFA), with the exact ``obo-console login ... --claims ...`` that satisfies it. A
failure ends with one
``obo-console: error: ...`` line on stderr saying what failed and what to do. Invalid configs of agents this
question does not need are named in a warning and left out; they never stop the others.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

from console.commands import settings_overrides
from console.commands.whoami import offline_warning
from console.core.agents.factory import DEFAULT_MAIN_KEYS, default_main_key
from console.core.agents.mcp_link import McpTarget
from console.core.agents.runner import AgentRunner
from console.core.agents.tracing import install_tracing
from console.core.auth.manager import AuthManager
from console.core.claims import format_timestamp
from console.core.configs.model import display_source
from console.core.configs.open_store import open_store
from console.core.events import EventBus
from console.core.printer import EventPrinter
from console.core.server_link import ServerLink
from console.core.settings import load_settings
from console.core.step_up_flow import login_command
from mcp_server.errors import UserError

TURN_FAILED = 3  # exit code: the turn ran but ended in an error (1: it could not start)
STEP_UP_REQUIRED = (
    4  # exit code: Conditional Access requires the user to sign in again with a claims challenge
)


def _token_provider(settings: Any, user: str | None) -> tuple[str, Any]:
    """(account username, async provider of a fresh access token) — raises NotSignedIn / StackNotRunning."""
    manager = AuthManager.from_settings(settings)
    account = manager.find_account(user) if user else manager.require_account()
    token = manager.acquire_token(account)  # fail now, clearly, rather than inside the first MCP request
    if manager.identity_unreachable:  # working from the cached token: say so, and until when
        print(
            f"obo-console: warning: {offline_warning(manager, format_timestamp(token.expires_on))}",
            file=sys.stderr,
        )

    async def provide() -> Any:
        return await manager.acquire_token_async(account)

    return account.username, provide


def run(args: argparse.Namespace) -> int:
    settings = load_settings(**settings_overrides(args))
    question = args.question.strip()
    if not question:
        raise UserError(
            "The question is empty.", hint='Ask something, e.g. obo-console ask "what time is it?"'
        )
    store = open_store(settings)
    try:
        configs = store.load_all()
    finally:
        store.close()
    start = _start_key(configs, args.agent)  # refuses when the asked agent or one it depends on is invalid
    served = {
        key: configs.configs[key] for key in _reachable(configs.configs, start)
    }  # build only what can run
    for line in _left_out(configs):
        print(f"obo-console: warning: {line}", file=sys.stderr)
    target = _connect_target(settings, args.connect) if getattr(args, "connect", None) else None
    account, provider = None, None
    if any(cfg.mcp_servers for cfg in served.values()):  # only then is a signed-in user needed
        account, provider = _token_provider(settings, args.user)

    bus = EventBus()
    printer = EventPrinter(json_lines=args.json, verbose=not args.quiet)
    bus.subscribe(printer.handle)
    install_tracing(settings)
    runner = AgentRunner(
        settings=settings,
        configs=served,
        bus=bus,
        account=account,
        token_provider=provider,
        main_key=start,
        require_mcp=True,
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
            "error": _failure_text(result),
            "step_up": _step_up_json(result.step_up, account, settings),
        }
        print(json.dumps(answer, ensure_ascii=False))
    if result.step_up is not None:
        challenge = result.step_up
        raise UserError(
            f"Conditional Access policy {challenge.policy} requires {challenge.required} for "
            f"{challenge.resource} (AADSTS{challenge.aadsts or '?'}); no documents were returned.",
            hint=f"Sign in again with the claims challenge: {_step_up_command(challenge, account, settings)} "
            "— then ask again.",
            exit_code=STEP_UP_REQUIRED,
        )
    if result.failed:
        raise UserError(_failure_line(result), exit_code=TURN_FAILED)
    return 0


def _step_up_command(challenge: Any, account: str | None, settings: Any) -> str:
    login = (account or "USER").split("@", 1)[0]
    return login_command(login, challenge, local=settings.mode == "local")


def _step_up_json(challenge: Any, account: str | None, settings: Any) -> dict[str, Any] | None:
    """The claims challenge in the ``--json`` answer (None when there was none)."""
    if challenge is None:
        return None
    return {
        "code": "insufficient_claims",
        "policy_ids": list(challenge.policy_ids),
        "resource": challenge.resource,
        "required": challenge.required,
        "aadsts": challenge.aadsts,
        "claims": challenge.encoded,
        "command": _step_up_command(challenge, account, settings),
    }


def _connect_target(settings: Any, url: str) -> Any:
    """``--connect URL``: the server every config's MCP server name stands for, once the trust rules accept it
    (no prompt here: an origin not trusted yet is refused, naming the setting to add)."""
    link = ServerLink(settings, connect_url=url, launch=False)  # every rule of mcp_trust, no prompt
    try:
        link.start()
        accepted = link.mcp_url
        assert accepted is not None  # start() returns only once a server was accepted
        return McpTarget(accepted, link.tls_verify)
    finally:
        link.close()  # a one-shot command does not watch the server


def _failure_text(result: Any) -> str | None:
    """What failed, on one line (None when the turn answered with every tool's result)."""
    failure = result.tool_failure
    if result.error:
        text = str(result.error)
    elif failure is not None:
        text = f"{failure.tool} failed: {failure.error}"
    else:
        return None
    return " ".join(text.split()).rstrip(".")


def _failure_line(result: Any) -> str:
    """The one line a failed turn ends with: what failed, then what to do."""
    hint = (
        "Ask again; if it keeps failing, --json shows every step."
        if result.error
        else result.tool_failure.hint
    )
    return f"The turn failed: {_failure_text(result)}. {hint}"


def _agent_key(configs: Any, wanted: str) -> str:
    """The key of the agent ``wanted`` names (a key, or an agent name), among every config the store holds."""
    if wanted in configs.entries:
        return str(wanted)
    for key, entry in configs.entries.items():
        cfg = entry.serving or entry.config
        if cfg is not None and cfg.name.lower() == wanted.lower():
            return str(key)
    raise UserError(
        f"There is no agent {wanted!r}.", hint=f"Known agents: {', '.join(sorted(configs.entries))}."
    )


def _start_key(configs: Any, wanted: str | None) -> str:
    """The agent to ask: ``wanted``, else the default main agent. Refuses (clearly) when it cannot run because
    its config, or the config of an agent it uses or hands off to, is invalid."""
    if wanted:
        key = _agent_key(configs, wanted)
    else:
        found = next((k for k in DEFAULT_MAIN_KEYS if k in configs.entries), None)
        if found is None and not configs.configs and configs.entries:
            found = sorted(configs.entries)[0]  # nothing serves: report the first broken one below
        key = found or default_main_key(configs.configs)
    if key in configs.configs:
        return key
    lines = "\n".join(f"  {issue}" for issue in _broken_chain(configs, key))
    raise UserError(
        f"The agent {key!r} cannot run: its config, or one it depends on, is invalid:\n{lines}",
        hint="Fix it (`obo-console configs validate`), or ask another agent with --agent NAME.",
    )


def _broken_chain(configs: Any, key: str) -> list[Any]:
    """The errors of ``key`` and of every invalid config it refers to, transitively."""
    found: list[Any] = []
    seen: set[str] = set()
    todo = [key]
    while todo:
        current = todo.pop(0)
        entry = configs.entries.get(current)
        if current in seen or entry is None or current in configs.configs:
            continue
        seen.add(current)
        found.extend(issue for issue in entry.issues if issue.severity == "error")
        cfg = entry.config or entry.serving
        todo.extend(cfg.referenced_agents if cfg is not None else [])
    return found


def _left_out(configs: Any) -> list[str]:
    """One warning per agent left out because its config (or one it depends on) is invalid."""
    lines = []
    for key, entry in sorted(configs.entries.items()):
        if key in configs.configs:
            continue
        problems = "; ".join(f"{i.path}: {i.message}" for i in entry.issues if i.severity == "error")
        lines.append(
            f"agent {key!r} ({display_source(entry.source)}) is invalid and left out: {problems}. "
            "The other agents still run; fix it with `obo-console configs validate`."
        )
    return lines


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
