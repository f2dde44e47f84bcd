"""The local stack behind `obo-console server`: the local identity platform (HTTPS), the local search service and
the MCP server, each on its own port and event loop; the state file is written once all of them answer."""

from __future__ import annotations

import contextlib
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx2
from azure.core.exceptions import ResourceNotFoundError
from azure.search.documents.indexes import SearchIndexClient
from pydantic import SecretStr

from mcp_server import provision
from mcp_server.atomic import write_private
from mcp_server.errors import UserError
from mcp_server.localcloud.admin import AdminApp
from mcp_server.localcloud.identity.platform import IdentityPlatform
from mcp_server.localcloud.search.auth import EntraTokenValidator
from mcp_server.localcloud.search.service import SearchService
from mcp_server.localcloud.serve import ThreadedServer
from mcp_server.localcloud.tenant import Tenant, load_demo_tenant
from mcp_server.paths import data_dir
from mcp_server.processes import pid_alive
from mcp_server.redact import remember_secret
from mcp_server.scenarios import ScenarioSwitch, ServiceControl
from mcp_server.search_credential import api_key_auth
from mcp_server.server.app import OboServer, create_server
from mcp_server.server.config import ServerConfig, check_search_api_version
from mcp_server.server.multiworker import WorkerPool
from mcp_server.server.runner import serve_threaded
from mcp_server.settings import SearchAuthSetting
from mcp_server.stack_state import (
    DemoUser,
    StackState,
    StateFileError,
    read_state,
    remove_state,
    write_state,
)

if TYPE_CHECKING:
    from agents import Model  # the Agents SDK loads only with the calculator

SEARCH_KEY_FILE = "search-api-key"
DEFAULT_INDEX = "document-permissions-push-idx"


class StackAlreadyRunning(UserError):
    def __init__(self, state_file: Path, pid: int | None, mcp_url: str | None) -> None:
        super().__init__(
            f"A local stack is already running (pid {pid}, MCP server {mcp_url}).",
            hint=f"Use it, or stop it first (Ctrl+C in its terminal, or `kill {pid}`). State file: {state_file}",
        )


@dataclass
class StackPorts:
    identity: int = 8443
    search: int = 8444
    mcp: int = 8000
    calculator: int | None = 8445  # the remote calculator agent (None: not started; else it needs a model)


def search_api_key(directory: Path) -> SecretStr:
    """The local search service's admin key: generated once, kept 0600 in the data dir."""
    path = directory / SEARCH_KEY_FILE
    try:
        key = path.read_text().strip()
        if key:
            return SecretStr(key)
    except FileNotFoundError:
        pass
    key = secrets.token_urlsafe(32)
    write_private(path, key)
    return SecretStr(key)


def demo_users(tenant: Tenant) -> list[DemoUser]:
    """The tenant's users as the state file lists them (for sign-in by name in local mode)."""
    return [
        DemoUser(username=u.username, oid=u.oid, name=u.name, groups=list(u.groups)) for u in tenant.users
    ]


def running_stack(state_file: Path) -> StackState | None:
    """The state of a stack that is really running (state file + live pid + healthz answering), else None."""
    try:
        state = read_state(state_file)
    except StateFileError:
        return None
    if state is None or not pid_alive(state.pid) or not state.mcp_url:
        return None
    base = state.mcp_url.rstrip("/").removesuffix("/mcp")
    try:
        httpx2.get(f"{base}/healthz", timeout=2.0, trust_env=False)
    except httpx2.HTTPError:
        return None
    return state


class LocalStack:
    """Start/stop the three local services in-process. ``start()`` returns the state it wrote (or would write)."""

    def __init__(
        self,
        *,
        home: Path | None = None,
        host: str = "127.0.0.1",
        ports: StackPorts | None = None,
        state_file: Path | None = None,
        write_state_file: bool = True,
        tenant: Tenant | None = None,
        provision: bool = True,
        ready_timeout: float = 30.0,
        calculator_model: Model | None = None,
        search_auth: SearchAuthSetting = "api-key",
        search_api_version: str | None = None,
        redis: ServiceControl | None = None,
        workers: int = 1,
        server_overrides: dict[str, Any] | None = None,
    ) -> None:
        """``calculator_model``: the model the calculator agent runs on, required unless ``ports.calculator`` is
        None (the console passes the one its settings choose: the server does not pick models)."""
        self.ports = ports or StackPorts()
        if self.ports.calculator is not None and calculator_model is None:
            raise ValueError(
                "The local stack's calculator agent needs a model: pass calculator_model, "
                "or StackPorts(calculator=None) to run without the calculator."
            )
        self.calculator_model = calculator_model
        self.search_auth = search_auth  # how the MCP server authenticates to the search service
        check_search_api_version(search_api_version)  # before anything starts: never a stack that cannot trim
        self.search_api_version = search_api_version  # None: the SDK's default
        # More than one worker: the MCP server runs in worker processes (multiworker.py), not in this process.
        self.workers = workers
        self.server_overrides = dict(server_overrides or {})
        self.home = home or data_dir()
        self.host = host
        self.state_file = state_file or self.home / "local-stack.json"
        self.write_state_file = write_state_file
        self.tenant = tenant or load_demo_tenant()
        self.provision = provision
        self.ready_timeout = ready_timeout
        self.identity: Any = None
        self.search: Any = None
        self.server: OboServer | None = None
        self.mcp: ThreadedServer | WorkerPool | None = None
        self.calculator: ThreadedServer | None = None
        self.state: StackState | None = None
        self.index_name = DEFAULT_INDEX
        self.provisioned = False
        self.redis = redis  # a Redis this stack may stop and start (the "redis-down" scenario), if any
        self.admin: ThreadedServer | None = None
        self.admin_secret = SecretStr(secrets.token_urlsafe(32))
        self.scenarios = ScenarioSwitch(self)

    @property
    def localcloud(self) -> Path:
        path = self.home / "localcloud"
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        return path

    # -- lifecycle -----------------------------------------------------------------------------------------
    def start(self) -> StackState:
        if self.write_state_file:
            existing = running_stack(self.state_file)
            if existing is not None:
                raise StackAlreadyRunning(self.state_file, existing.pid, existing.mcp_url)
        try:
            self._start_identity()
            self._start_search()
            self._provision()
            self._start_mcp()
            self._start_calculator()
            self._start_admin()
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        self.state = self._state()
        if self.write_state_file:
            write_state(self.state, self.state_file)
        return self.state

    def stop(self) -> None:
        """Stop everything started (in reverse order) and remove the state file if this stack wrote it. An active
        scenario is reset first: a rotated key file or a rebuilt index would outlive the stack otherwise."""
        if self.scenarios.active is not None:
            with contextlib.suppress(Exception):
                self.scenarios.reset()
        if self.write_state_file and self.state is not None:
            with contextlib.suppress(StateFileError):
                current = read_state(self.state_file)
                if current is not None and current.pid == os.getpid():
                    remove_state(self.state_file)
        for name in ("admin", "calculator", "mcp"):
            threaded = getattr(self, name)
            if threaded is not None:
                threaded.stop()
                setattr(self, name, None)
        if self.server is not None:
            with contextlib.suppress(Exception):
                self.server.search.close()
            self.server = None
        for name in ("search", "identity"):
            service = getattr(self, name)
            if service is not None:
                service.stop()
                setattr(self, name, None)
        self.state = None

    def __enter__(self) -> LocalStack:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- parts ---------------------------------------------------------------------------------------------
    def _start_identity(self) -> None:
        self.identity = IdentityPlatform(
            self.tenant, home=self.localcloud, host=self.host, port=self.ports.identity
        )
        self.identity.start()

    def _start_search(self) -> None:
        tenant = self.tenant
        self.search_key = search_api_key(self.localcloud)
        validator = EntraTokenValidator(
            self.identity.jwks,  # in-process: the identity platform's current key set
            issuers={f"https://sts.windows.net/{tenant.tenant_id}/", self.identity.issuer},
        )

        def directory(tenant_id: str, oid: str) -> list[str] | None:
            # What Azure AI Search asks Microsoft Graph: the user's groups (None: unknown tenant → 503).
            return tenant.groups_of(oid) if tenant_id == tenant.tenant_id else None

        self.search = SearchService(
            self.localcloud / "search",
            self.search_key,
            token_validator=validator,
            directory=directory,
            host=self.host,
            port=self.ports.search,
            roles_of=tenant.search_roles_of,  # keyless callers: the tenant file's role assignments
        )
        self.search.start()

    def _provision(self) -> None:
        """Create the demo index and documents on first start (an existing index is left as it is)."""
        if not self.provision:
            return

        with SearchIndexClient(
            self.search.endpoint, **api_key_auth(self.search_key).client_kwargs()
        ) as client:
            try:
                client.get_index(self.index_name)
                return
            except ResourceNotFoundError:
                pass
        provision.provision(
            self.search.endpoint,
            self.search_key,
            self.index_name,
            provision.principals_from_tenant(self.tenant),
        )
        self.provisioned = True

    def server_config(self, **overrides: Any) -> ServerConfig:
        """The MCP server's configuration for this stack (tests build variants with ``overrides``)."""
        api = self.tenant.api_app
        assert api.client_secret is not None
        values: dict[str, Any] = dict(
            mode="local",
            authority=self.identity.authority,
            tenant_id=self.tenant.tenant_id,
            api_client_id=api.client_id,
            api_client_secret=api.client_secret,
            identifier_uri=api.identifier_uris[0] if api.identifier_uris else None,
            search_endpoint=self.search.endpoint,
            search_index=self.index_name,
            search_api_key=self.search_key,
            ca_cert=Path(self.identity.ca_cert_path),
            graph_endpoint=self.identity.graph_endpoint,  # the identity host serves Graph's subset
            host=self.host,
            port=self.ports.mcp,
            search_auth=self.search_auth,
            search_api_version=self.search_api_version,
        )
        values.update(self.server_overrides)
        values.update(overrides)
        return ServerConfig(**values)

    def _start_mcp(self) -> None:
        if self.workers > 1:
            self.mcp = WorkerPool(
                self.server_config(), self.workers, host=self.host, port=self.ports.mcp
            ).start()
            return
        self.server = create_server(self.server_config())
        self.mcp = serve_threaded(self.server, host=self.host, port=self.ports.mcp)

    def _start_calculator(self) -> None:
        if self.ports.calculator is None or self.calculator_model is None:
            return
        from mcp_server.calculator import serve_calculator  # deferred: the Agents SDK, calculator only

        self.calculator = serve_calculator(self.calculator_model, self.host, self.ports.calculator)

    def _start_admin(self) -> None:
        """The scenario admin endpoint, on loopback, on a port of its own (docs/scenarios.md)."""
        app = AdminApp(self.scenarios, self.admin_secret).build()
        self.admin = ThreadedServer(app, name="admin", host=self.host, port=0)
        self.admin.start()

    def _wait_ready(self) -> None:
        assert self.mcp is not None
        deadline = time.monotonic() + self.ready_timeout
        last: Any = None
        while time.monotonic() < deadline:
            try:
                response = httpx2.get(f"{self.mcp.base_url}/healthz", timeout=5.0, trust_env=False)
                if response.status_code == 200:
                    return
                last = response.json().get("parts")
            except (httpx2.HTTPError, ValueError) as exc:
                last = repr(exc)
            time.sleep(0.2)
        raise RuntimeError(f"the local stack did not become ready within {self.ready_timeout:.0f} s: {last}")

    @property
    def mcp_url(self) -> str:
        assert self.mcp is not None
        return f"{self.mcp.base_url}{self.server_config().mcp_path}"

    def _state(self) -> StackState:
        api = self.tenant.api_app
        # The stack's own secrets: masked in every log line and error this process writes from now on.
        remember_secret(api.client_secret)
        remember_secret(self.search_key)
        remember_secret(self.admin_secret)
        return StackState(
            mcp_url=self.mcp_url,
            authority=self.identity.authority,
            tenant_id=self.tenant.tenant_id,
            console_client_id=self.tenant.console_app.client_id,
            api_client_id=api.client_id,
            api_client_secret=api.client_secret,
            api_scope=self.tenant.api_scope,
            search_endpoint=self.search.endpoint,
            search_index=self.index_name,
            search_api_key=self.search_key,
            ca_cert=str(self.identity.ca_cert_path),
            users=demo_users(self.tenant),
            pid=os.getpid(),
            calculator_url=self.calculator.base_url if self.calculator is not None else None,
            admin_url=self.admin.base_url if self.admin is not None else None,
            admin_secret=self.admin_secret,
        )
