"""The ``obo-console`` command. The arguments of every sub-command are in ``console.commands.parsers``; a
sub-command's module (``console.commands.<name>``, which imports what it needs at the top) is imported only to run
it, so ``obo-console --help`` loads no command and the TUI's first frame stays fast."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from console.commands.parsers import COMMANDS
from mcp_server.errors import UserError
from mcp_server.paths import use_home

# The global flags: accepted before the sub-command and after it (at any depth), as people type them.
GLOBAL_FLAGS: list[tuple[str, dict[str, Any]]] = [
    ("--mode", {"choices": ["local", "azure"], "help": "local (default) or azure; env OBO_CONSOLE_MODE"}),
    (
        "--state-file",
        {"type": Path, "metavar": "PATH", "help": "the local stack state file (default: in the data dir)"},
    ),
    (
        "--home",
        {
            "type": Path,
            "metavar": "DIR",
            "help": "data directory for every per-user file (env OBO_CONSOLE_HOME)",
        },
    ),
    ("--connect", {"metavar": "URL", "help": "connect the console to another MCP server"}),
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="obo-console",
        description="Run and watch identity-aware AI agents. With no sub-command: the full-screen console.",
        epilog="The global flags work before or after the sub-command; given twice, the later one wins.",
    )
    for flag, options in GLOBAL_FLAGS:
        parser.add_argument(flag, **options)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (register, _module) in COMMANDS.items():
        register(sub, name)
    _accept_global_flags(parser)
    return parser


def _accept_global_flags(parser: argparse.ArgumentParser) -> None:
    """Add the global flags to every sub-command parser, recursively. Their default is SUPPRESS, so a flag
    not given after the sub-command leaves the value given before it in place (and a later one overrides it)."""
    for action in parser._actions:
        if not isinstance(action, argparse._SubParsersAction):
            continue
        for child in {id(p): p for p in action.choices.values()}.values():
            group = child.add_argument_group("global flags (also accepted before the sub-command)")
            for flag, options in GLOBAL_FLAGS:
                own = child._option_string_actions.get(flag)
                if own is not None:  # the sub-command defines it itself: keep its meaning, not its reset
                    own.default = argparse.SUPPRESS
                else:
                    group.add_argument(flag, default=argparse.SUPPRESS, **options)
            _accept_global_flags(child)


def main(argv: Sequence[str] | None = None) -> int:
    """Parse and run one command. The global flags reach it explicitly, never through ``os.environ``: --mode and
    --state-file as ``load_settings`` overrides (``console.commands.settings_overrides``), --home as the data
    directory for the command's duration (``paths.use_home``)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    with use_home(args.home):
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    try:
        if args.connect and args.command not in (None, "ask", "web"):
            raise UserError(
                f"--connect is not used by `obo-console {args.command}`: only the console and `ask` talk to an MCP "
                "server.",
                hint="Drop --connect, or use it with `obo-console --connect URL` or `obo-console --connect URL ask`.",
                exit_code=2,
            )
        # The full-screen console without a sub-command; else the sub-command's module, imported only now.
        name = "tui" if args.command is None else COMMANDS[args.command][1]
        module = importlib.import_module(f"console.commands.{name}")
        return int(module.run(args) or 0)
    except UserError as exc:
        print(f"obo-console: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("obo-console: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
