"""`obo-console provision`: create the permission-filtered index and upload the demo documents (local mode:
on the running local stack; Azure mode: on the configured service). What it does in each mode is its help text,
``console.commands.parsers.PROVISION_DESCRIPTION``."""

from __future__ import annotations

import argparse
import json
import sys

from pydantic import SecretStr

from console.commands import settings_overrides
from console.core.errors import StackNotRunning
from console.core.settings import load_settings
from mcp_server.errors import UserError
from mcp_server.localcloud.tenant import load_demo_tenant
from mcp_server.provision import ProvisionError, parse_assignments, principals_from_tenant, provision
from mcp_server.stack_state import StateFileError, read_state


def run(args: argparse.Namespace) -> int:
    settings = load_settings(**settings_overrides(args))
    try:
        assigned = parse_assignments(args.assign)
    except ValueError as exc:
        raise UserError(str(exc), hint="Run `obo-console provision --help` for the accepted names.") from None

    endpoint: str | None
    api_key: SecretStr | None
    if settings.mode == "local":
        try:
            state = read_state(settings.effective_state_file())
        except StateFileError as exc:
            raise UserError(str(exc)) from None
        if state is None:
            raise StackNotRunning(f"no state file at {settings.effective_state_file()}")
        if not state.search_endpoint or state.search_api_key is None:
            raise StackNotRunning("the running stack has no search service")
        endpoint, api_key = state.search_endpoint, state.search_api_key
        index = args.index or state.search_index or settings.search_index
        principals = principals_from_tenant(load_demo_tenant()) | assigned
    else:
        endpoint, api_key = settings.search_endpoint, settings.search_api_key
        if not endpoint or api_key is None:
            raise UserError(
                "Azure mode needs the search service's endpoint and admin key.",
                hint="Set OBO_CONSOLE_SEARCH_ENDPOINT=https://<service>.search.windows.net and "
                "OBO_CONSOLE_SEARCH_API_KEY=<admin key> (environment or .env).",
            )
        index = args.index or settings.search_index
        principals = assigned
        if not assigned:
            print(
                "obo-console: warning: no --assign given: only the public demo documents will be readable. "
                "Map demo users to real object ids, e.g. --assign alice=<your object id>.",
                file=sys.stderr,
            )

    print(f"Provisioning index '{index}' at {endpoint} ...", file=sys.stderr)
    try:
        report = provision(endpoint, api_key, index, principals)
    except ProvisionError as exc:
        raise UserError(
            str(exc),
            hint="Check the endpoint and admin key"
            + (" (is the local stack still running?)" if settings.mode == "local" else "")
            + "; the index uses preview permission filtering (API version 2026-08-01-preview).",
        ) from None
    if report.unmapped:
        print(
            "obo-console: warning: not mapped, so left out of the documents' readers: "
            + ", ".join(report.unmapped),
            file=sys.stderr,
        )
    if args.json:
        print(json.dumps(report.as_dict()))
    else:
        print(
            f"Index '{report.index}' ready: {report.documents} documents "
            f"({report.created} new, {report.updated} updated)."
        )
    return 0
