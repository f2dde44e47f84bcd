"""Where sign-in and the MCP server are: from the running local stack's state file, or from Azure settings.

Local mode reads the state file the local stack writes (``obo-console server``); Azure mode reads Settings
(env / .env). The local CA is only ever returned in local mode.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from console.core.errors import StackNotRunning
from console.core.settings import Settings, load_settings
from mcp_server.errors import UserError
from mcp_server.processes import pid_alive
from mcp_server.settings import Mode
from mcp_server.stack_state import DemoUser, StackState, StateFileError, read_state


@dataclass(frozen=True)
class Endpoints:
    mode: Mode
    authority: str  # https URL ending in the tenant id
    tenant_id: str
    console_client_id: str
    api_scope: str  # e.g. api://<api client id>/execute
    api_client_id: str | None = None
    ca_cert: Path | None = None  # the local identity platform's CA (local mode only)
    mcp_url: str | None = None
    users: tuple[DemoUser, ...] = field(default_factory=tuple)
    state_file: Path | None = None

    def demo_user(self, login: str) -> DemoUser:
        """The demo user named by ``login``: a username or its part before ``@`` (case-insensitive)."""
        wanted = login.strip().lower()
        for user in self.users:
            name = user.username.lower()
            if wanted in (name, name.split("@", 1)[0]):
                return user
        known = ", ".join(u.username.split("@", 1)[0] for u in self.users) or "none"
        raise UserError(f"There is no demo user {login!r} in the local tenant.", hint=f"Demo users: {known}.")


def stack_state(settings: Settings) -> tuple[Path, StackState]:
    """The local stack's state file and what it says; UserError when unreadable, StackNotRunning when absent."""
    path = settings.effective_state_file()
    try:
        state = read_state(path)
    except StateFileError as exc:
        raise UserError(str(exc)) from exc
    if state is None:
        raise StackNotRunning(f"no state file at {path}")
    return path, state


def local_endpoints(settings: Settings) -> Endpoints:
    path, state = stack_state(settings)
    if state.pid is not None and not pid_alive(state.pid):
        raise StackNotRunning(f"{path} was left by a stack that stopped (pid {state.pid})")
    missing = [
        name
        for name in ("authority", "tenant_id", "console_client_id", "api_scope", "ca_cert")
        if not getattr(state, name)
    ]
    if missing:
        raise StackNotRunning(f"its identity platform is not up: {', '.join(missing)} missing in {path}")
    ca_cert = Path(state.ca_cert or "")
    if not ca_cert.is_file():
        raise StackNotRunning(f"the CA certificate {ca_cert} named in {path} does not exist")
    return Endpoints(
        mode="local",
        authority=str(state.authority).rstrip("/"),
        tenant_id=str(state.tenant_id),
        console_client_id=str(state.console_client_id),
        api_scope=str(state.api_scope),
        api_client_id=state.api_client_id,
        ca_cert=ca_cert,
        mcp_url=state.mcp_url,
        users=tuple(state.users),
        state_file=path,
    )


def azure_endpoints(settings: Settings) -> Endpoints:
    authority = settings.effective_authority()
    scope = settings.effective_api_scope()
    missing = []
    if not authority:
        missing.append("OBO_CONSOLE_TENANT_ID (or OBO_CONSOLE_AUTHORITY)")
    if not settings.console_client_id:
        missing.append("OBO_CONSOLE_CONSOLE_CLIENT_ID")
    if not scope:
        missing.append("OBO_CONSOLE_API_CLIENT_ID (or OBO_CONSOLE_API_SCOPE)")
    if missing:
        raise UserError(
            "Azure mode needs these settings: " + ", ".join(missing) + ".",
            hint="Set them in the environment or a .env file (see the README's Azure section), "
            "or use local mode (OBO_CONSOLE_MODE=local).",
        )
    assert authority and scope and settings.console_client_id
    if not authority.startswith("https://"):
        raise UserError(f"The authority must be an https URL, got {authority!r}.")
    tenant_id = settings.tenant_id or authority.rsplit("/", 1)[-1]
    return Endpoints(
        mode="azure",
        authority=authority,
        tenant_id=tenant_id,
        console_client_id=settings.console_client_id,
        api_scope=scope,
        api_client_id=settings.api_client_id,
        ca_cert=None,  # never the local CA in Azure mode
        mcp_url=settings.effective_mcp_url(),
    )


def resolve_endpoints(settings: Settings | None = None) -> Endpoints:
    settings = settings or load_settings()
    return azure_endpoints(settings) if settings.mode == "azure" else local_endpoints(settings)
