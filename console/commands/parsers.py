"""The command line's sub-commands and their arguments: everything ``obo-console --help`` shows, and all it loads.

Each sub-command's implementation lives in ``console.commands.<module>`` with its imports at the top; the CLI
imports that module only to run it, so asking for help never loads the console core.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

Register = Callable[["argparse._SubParsersAction[argparse.ArgumentParser]", str], None]

PROVISION_DESCRIPTION = """\
`obo-console provision`: create the permission-filtered index and upload the demo documents.

Local mode: against the running local stack's search service (from the state file), readers mapped to the demo
tenant's object ids. Azure mode: against OBO_CONSOLE_SEARCH_ENDPOINT / OBO_CONSOLE_SEARCH_API_KEY, readers mapped
with ``--assign alice=<object id>`` / ``--assign group:Finance=<object id>``.
"""


def server(sub: argparse._SubParsersAction[argparse.ArgumentParser], name: str) -> None:
    parser = sub.add_parser(
        name,
        help="run the MCP server (local mode: with the local identity platform and search service)",
        description="Run the bundled MCP server in the foreground until Ctrl+C / SIGTERM. In local mode it also "
        "starts the local identity platform and search service and writes the local stack state file.",
    )
    parser.add_argument("--host", help="address to listen on (default 127.0.0.1; env OBO_CONSOLE_MCP_HOST)")
    parser.add_argument("--port", type=int, help="MCP server port (default 8000, 0 = any free port)")
    parser.add_argument("--identity-port", type=int, help="local identity platform port (default 8443)")
    parser.add_argument("--search-port", type=int, help="local search service port (default 8444)")
    parser.add_argument("--calculator-port", type=int, help="remote calculator agent port (default 8445)")
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="MCP server processes on the one port (default 1; share the OBO cache with OBO_CONSOLE_OBO_CACHE=redis)",
    )


def login(sub: argparse._SubParsersAction[argparse.ArgumentParser], name: str) -> None:
    parser = sub.add_parser(
        name,
        help="sign in with the device-code flow, or --browser (local mode: --as alice|bob|carol|dave|erin)",
        description="Sign in with the OAuth 2.0 device-code flow, or with --browser in the system browser "
        "(authorization code with PKCE, loopback redirect http://localhost). The token cache is kept in the OS "
        "keyring. In local mode, --as USER completes the sign-in page as that demo user.",
    )
    parser.add_argument("--as", dest="as_user", metavar="USER", help="local mode: sign in as this demo user")
    parser.add_argument(
        "--browser",
        action="store_true",
        help="sign in in the system browser instead (for tenants that block the device-code flow)",
    )
    parser.add_argument(
        "--claims",
        metavar="CHALLENGE",
        help="sign in again with a Conditional Access claims challenge (base64url, as `ask` prints it; exit 4)",
    )


def logout(sub: argparse._SubParsersAction[argparse.ArgumentParser], name: str) -> None:
    parser = sub.add_parser(
        name,
        help="sign out (the current account, USERNAME, or --all)",
        description="Remove signed-in accounts and all their tokens from the keyring. Without arguments: the "
        "current account.",
    )
    target = parser.add_mutually_exclusive_group()
    target.add_argument("username", nargs="?", help="the account to sign out (username or the part before @)")
    target.add_argument("--all", action="store_true", help="sign out every account and wipe the token cache")


def whoami(sub: argparse._SubParsersAction[argparse.ArgumentParser], name: str) -> None:
    parser = sub.add_parser(
        name,
        help="show the signed-in account and its token's decoded claims",
        description="Show the signed-in account and the decoded claims of its access token (never the token).",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON document on stdout")
    parser.add_argument(
        "--user", metavar="NAME", help="use this signed-in account and make it the current one"
    )


def ask(sub: argparse._SubParsersAction[argparse.ArgumentParser], name: str) -> None:
    parser = sub.add_parser(
        name,
        help="ask the agents one question (headless; for scripts and CI)",
        description="Run one turn with the agents as the signed-in user and print its events and the answer.",
        epilog="exit codes: 0 answered; 1 the turn could not start; 2 wrong usage; 3 the turn ended in an error; "
        "4 Conditional Access requires signing in again with a claims challenge (MFA) — the exact "
        "`obo-console login ... --claims ...` to run is printed; 130 interrupted",
    )
    parser.add_argument("question", help="what to ask")
    parser.add_argument(
        "--agent", metavar="NAME", help="the agent to ask (config key or name; default: the main agent)"
    )
    parser.add_argument(
        "--json", action="store_true", help="print JSON lines (events, then the answer) on stdout"
    )
    parser.add_argument(
        "--user", metavar="NAME", help="the signed-in account to ask as (default: the current one)"
    )
    parser.add_argument("--quiet", action="store_true", help="print only the answer (human mode)")


def configs(sub: argparse._SubParsersAction[argparse.ArgumentParser], name: str) -> None:
    parser = sub.add_parser(
        name,
        help="list, validate, push and pull agent configs",
        description="Agent configs: configs/*.json by default, Redis (keys agent|<key>) with USE_REDIS=true.",
    )
    actions = parser.add_subparsers(dest="configs_action", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="the configs in the active store, with their status")
    listing.add_argument("--json", action="store_true", help="print one JSON document")
    validate = actions.add_parser(
        "validate", help="check config files or folders (default: the active store); exit 1 on any invalid"
    )
    validate.add_argument("paths", nargs="*", type=Path, metavar="PATH", help="config files or folders")
    validate.add_argument("--json", action="store_true", help="print one JSON document")
    push = actions.add_parser("push", help="validate config files, then write the good ones to Redis")
    push.add_argument(
        "paths", nargs="*", type=Path, metavar="PATH", help="files or folders (default: configs)"
    )
    pull = actions.add_parser("pull", help="write the configs in Redis to files")
    pull.add_argument("dir", nargs="?", type=Path, metavar="DIR", help="target folder (default: configs)")


def provision(sub: argparse._SubParsersAction[argparse.ArgumentParser], name: str) -> None:
    parser = sub.add_parser(
        name,
        help="create the permission-filtered search index and upload the demo documents",
        description=PROVISION_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--assign",
        action="append",
        default=[],
        metavar="NAME=OBJECT_ID",
        help="Azure mode: map a demo user (alice, bob, carol) or group (group:Finance, group:Engineering, group:HR, "
        "'group:All Staff') to a real Entra object id; repeatable. Local mode: overrides the demo tenant's ids.",
    )
    parser.add_argument(
        "--index", help="index name (default: the stack's index, or OBO_CONSOLE_SEARCH_INDEX)"
    )
    parser.add_argument("--json", action="store_true", help="print the result as one JSON document")


def rotate_keys(sub: argparse._SubParsersAction[argparse.ArgumentParser], name: str) -> None:
    parser = sub.add_parser(
        name,
        help="rotate the local identity platform's signing key (old key kept for --grace seconds)",
        description="Rotate the local identity platform's token-signing key. The new key signs from now on; the "
        "previous key stays published in the JWKS for the grace period, then is dropped. Local mode only.",
    )
    parser.add_argument(
        "--grace",
        type=float,
        default=None,
        metavar="SECONDS",
        help="how long the previous key stays published (default 86400 = 24 h)",
    )
    parser.add_argument("--json", action="store_true", help="print the result as one JSON document")


def web(sub: argparse._SubParsersAction[argparse.ArgumentParser], name: str) -> None:
    parser = sub.add_parser(
        name,
        help="serve the console to web browsers (textual-serve; one console per tab)",
        description="Serve the console to browsers: each tab runs its own console, with its own sign-in and "
        "conversation (kept in that console's memory only), all on the local stack this "
        "command launches (or finds) and stops on exit. The printed URL carries the access token; nothing is "
        "served without it.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080, help="port (default 8080, 0 = any free port)")
    parser.add_argument(
        "--allow-remote",
        action="store_true",
        help="allow a --host that is not loopback: whoever reaches it with the token acts as the signed-in users",
    )


def scenario(sub: argparse._SubParsersAction[argparse.ArgumentParser], name: str) -> None:
    parser = sub.add_parser(
        name,
        help="switch the running local stack into a named misconfiguration and back (local mode)",
        description="Break one link of the chain live (missing consent, wrong secret, rotated keys, ...) to see "
        "how it looks in the console and in `doctor`; `reset` puts it back. Local mode only.",
    )
    actions = parser.add_subparsers(dest="scenario_action", metavar="ACTION", required=True)
    for action, text in (
        ("list", "the scenarios, and which is active"),
        ("reset", "undo the active scenario"),
    ):
        child = actions.add_parser(action, help=text)
        child.add_argument("--json", action="store_true", help="print one JSON document")
    apply = actions.add_parser("apply", help="apply the scenario NAME (resets any other first)")
    apply.add_argument("name", metavar="NAME", help="a scenario name from `scenario list`")
    apply.add_argument("--json", action="store_true", help="print one JSON document")


def doctor(sub: argparse._SubParsersAction[argparse.ArgumentParser], name: str) -> None:
    parser = sub.add_parser(
        name,
        help="check every link of the chain, in order, and say how to fix the first broken one",
        description="Walk the chain against the configured mode: identity platform, sign-in, MCP server, OBO "
        "exchange, search, Redis. One line per check; exit 0 only when all pass.",
    )
    parser.add_argument(
        "--json", action="store_true", help='print {"ok", "checks": [...]} as one JSON document'
    )
    parser.add_argument(
        "--user", metavar="NAME", help="the signed-in account to check (default: the current one)"
    )


# Sub-command name -> (its arguments, its module under console.commands, which has run(args) -> int).
COMMANDS: dict[str, tuple[Register, str]] = {
    "server": (server, "server"),
    "login": (login, "login"),
    "logout": (logout, "logout"),
    "whoami": (whoami, "whoami"),
    "ask": (ask, "ask"),
    "configs": (configs, "configs"),
    "provision": (provision, "provision"),
    "rotate-keys": (rotate_keys, "rotate_keys"),
    "web": (web, "web"),
    "scenario": (scenario, "scenario"),
    "doctor": (doctor, "doctor"),
}
