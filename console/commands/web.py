"""`obo-console web`: the console in web browsers, served by textual-serve.

Local mode: the local stack is found (or launched) once, here, and every tab's console connects to it through
the state file; what this command launched it stops on exit. The URL printed on start carries the access token
(``console.core.web_guard``); a --host that is not loopback needs --allow-remote and a warning is printed.
"""

from __future__ import annotations

import argparse
import asyncio
import shlex
import sys

from console.commands import settings_overrides
from console.core.mcp_urls import is_loopback_host
from console.core.server_link import ServerLink
from console.core.settings import Settings, load_settings
from console.core.web_guard import TOKEN_PARAM, AccessGuard
from console.core.web_serve import GuardedServer, bind, serve, url_host
from mcp_server.errors import UserError
from mcp_server.paths import data_dir


def run(args: argparse.Namespace) -> int:
    loopback = _check_host(args.host, args.allow_remote)
    settings = load_settings(**settings_overrides(args))
    sock = bind(args.host, args.port)  # before the stack: a taken port fails fast
    link = _link(settings, args.connect)
    try:
        if link is not None:
            _say("obo-console web: finding or launching the local stack…")
            link.start()
            _say(
                f"obo-console web: local stack {'launched' if link.launched else 'running'} at {link.mcp_url}"
            )
        guard = AccessGuard(loopback_only=loopback)
        guard.port = sock.getsockname()[1]
        server = GuardedServer(_console_command(args, settings), guard, title="OBO Console")
        base = f"http://{url_host(args.host)}:{guard.port}"
        asyncio.run(serve(server, sock, lambda: _announce(base, guard)))
    finally:
        sock.close()
        if link is not None:
            link.close()  # stops the stack only if this command launched it
    _say("obo-console web: stopped")
    return 0


def _check_host(host: str, allow_remote: bool) -> bool:
    """Whether ``host`` is loopback; UserError for another host without --allow-remote."""
    if is_loopback_host(host):
        return True
    if not allow_remote:
        raise UserError(
            f"--host {host} is not a loopback address: anyone who reaches it and has the URL could act as the "
            "signed-in users.",
            hint="Keep the default (127.0.0.1), or add --allow-remote if that is what you want.",
            exit_code=2,
        )
    _say(
        f"obo-console web: WARNING: listening on {host}, not on loopback. Anyone who can reach this address and "
        "has the printed URL (its token) can open consoles on this machine: sign in (any demo user in local mode), "
        "read what that account may read, and run agents on this machine's stack and model key. Each tab's sign-in "
        "stays in its tab. Share the URL only with people you trust; the traffic is plain HTTP."
    )
    return False


def _link(settings: Settings, connect: str | None) -> ServerLink | None:
    """The local stack's link (local mode, no --connect); None when each console uses a configured server."""
    if settings.mode != "local" or connect:
        return None
    return ServerLink(settings)


# Each tab's own sign-in and conversation: its token cache and conversations live in its process only, so a new
# tab starts signed out, and nothing of a tab reaches the keyring or the saved conversations (docs/web.md).
TAB_ENVIRONMENT = {"OBO_CONSOLE_TOKEN_CACHE": "memory", "OBO_CONSOLE_CONVERSATIONS": "memory"}


def _console_command(args: argparse.Namespace, settings: Settings) -> str:
    """The shell command textual-serve runs for each tab: this console, on the same data directory, state file
    and mode (so it attaches to the stack found or launched above), and the same --connect, with the tab's
    sign-in and conversations kept in its own process (``TAB_ENVIRONMENT``)."""
    argv = [
        "env",
        *(f"{name}={value}" for name, value in TAB_ENVIRONMENT.items()),
        sys.executable,
        "-m",
        "console.cli",
        "--home",
        str(data_dir().resolve()),
        "--mode",
        settings.mode,
        "--state-file",
        str(settings.effective_state_file()),
    ]
    if args.connect:
        argv += ["--connect", args.connect]
    return "exec " + shlex.join(argv)


def _announce(base: str, guard: AccessGuard) -> None:
    print(
        "OBO Console is served to web browsers. Open (the token in it is the key — share it only with people you "
        "trust to open consoles on this machine):",
        flush=True,
    )
    print(f"    {base}/?{TOKEN_PARAM}={guard.token.get_secret_value()}", flush=True)
    print(
        "Each tab runs its own console, with its own sign-in and conversation (kept in that console only). "
        "Ctrl+C stops the server, the tabs' consoles and the stack it launched."
    )
    sys.stdout.flush()


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
