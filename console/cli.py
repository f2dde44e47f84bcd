"""The ``obo-console`` command. Sub-commands live in ``console.commands.<name>`` and import heavy
libraries only when they run, so ``obo-console --help`` and the TUI's first frame stay fast."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from console.core.errors import UserError

# Sub-command name -> module under console.commands (each has register(subparsers) and run(args)).
COMMANDS: dict[str, str] = {
    "server": "server",
    "login": "login",
    "logout": "logout",
    "whoami": "whoami",
    "ask": "ask",
    "configs": "configs",
    "provision": "provision",
    "rotate-keys": "rotate_keys",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="obo-console",
        description="Run and watch identity-aware AI agents. With no sub-command: the full-screen console.",
    )
    parser.add_argument("--mode", choices=["local", "azure"], help="local (default) or azure; env OBO_CONSOLE_MODE")
    parser.add_argument("--state-file", type=Path, help="the local stack state file (default: in the data dir)")
    parser.add_argument("--home", type=Path, help="data directory for every per-user file (env OBO_CONSOLE_HOME)")
    parser.add_argument("--connect", metavar="URL", help="connect the console to another MCP server")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module in COMMANDS.items():
        importlib.import_module(f"console.commands.{module}").register(sub, name)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.home is not None:
        os.environ["OBO_CONSOLE_HOME"] = str(args.home)
    if args.mode is not None:
        os.environ["OBO_CONSOLE_MODE"] = args.mode
    if args.state_file is not None:
        os.environ["OBO_CONSOLE_STATE_FILE"] = str(args.state_file)
    try:
        if args.connect and args.command not in (None, "ask"):
            raise UserError(
                f"--connect is not used by `obo-console {args.command}`: only the console and `ask` talk to an MCP "
                "server.",
                hint="Drop --connect, or use it with `obo-console --connect URL` or `obo-console --connect URL ask`.",
                exit_code=2,
            )
        if args.command is None:
            from console.commands import tui

            return tui.run(args)
        module = importlib.import_module(f"console.commands.{COMMANDS[args.command]}")
        return int(module.run(args) or 0)
    except UserError as exc:
        print(f"obo-console: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("obo-console: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
