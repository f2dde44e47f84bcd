"""`obo-console provision`: create the permission-filtered index and upload the demo documents (local mode:
on the running local stack; Azure mode: on the configured service). What it does in each mode is its help text,
``console.commands.parsers.PROVISION_DESCRIPTION``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from pydantic import SecretStr

from console.commands import settings_overrides
from console.core.errors import StackNotRunning
from console.core.settings import load_settings
from mcp_server.errors import UserError
from mcp_server.localcloud.tenant import load_demo_tenant
from mcp_server.provision import ProvisionError, parse_assignments, principals_from_tenant, provision
from mcp_server.search_credential import SearchAuthentication, client_secret_auth, default_azure_auth
from mcp_server.stack_state import StackState, StateFileError, read_state


def _local_provisioner(state: StackState) -> SearchAuthentication:
    """Keyless provisioning on the local stack: the tenant file's provisioner app (client credentials)."""
    app = load_demo_tenant().app("provisioner")
    if app.client_secret is None or not state.authority:
        raise UserError(
            "The tenant file's provisioner app has no client secret, or the stack has no authority."
        )
    return client_secret_auth(state.authority, app.client_id, app.client_secret, _ca(state))


def _ca(state: StackState) -> Path | None:
    return Path(state.ca_cert) if state.ca_cert else None


def run(args: argparse.Namespace) -> int:
    settings = load_settings(**settings_overrides(args))
    try:
        assigned = parse_assignments(args.assign)
    except ValueError as exc:
        raise UserError(str(exc), hint="Run `obo-console provision --help` for the accepted names.") from None

    endpoint: str | None
    api_key: SecretStr | SearchAuthentication | None
    keyless = settings.search_auth == "entra"
    if settings.mode == "local":
        try:
            state = read_state(settings.effective_state_file())
        except StateFileError as exc:
            raise UserError(str(exc)) from None
        if state is None:
            raise StackNotRunning(f"no state file at {settings.effective_state_file()}")
        if not state.search_endpoint or state.search_api_key is None:
            raise StackNotRunning("the running stack has no search service")
        endpoint = state.search_endpoint
        api_key = _local_provisioner(state) if keyless else state.search_api_key
        index = args.index or state.search_index or settings.search_index
        principals = principals_from_tenant(load_demo_tenant()) | assigned
    else:
        endpoint = settings.search_endpoint
        # Keyless in Azure: whatever identity DefaultAzureCredential finds (CLI sign-in, managed identity, ...).
        api_key = default_azure_auth() if keyless and endpoint else settings.search_api_key
        if not endpoint or api_key is None:
            raise UserError(
                "Azure mode needs the search service's endpoint and admin key.",
                hint="Set OBO_CONSOLE_SEARCH_ENDPOINT=https://<service>.search.windows.net and "
                "OBO_CONSOLE_SEARCH_API_KEY=<admin key> (environment or .env), or OBO_CONSOLE_SEARCH_AUTH=entra "
                "to provision keyless as your Azure identity.",
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
