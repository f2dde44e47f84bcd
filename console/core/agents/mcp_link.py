"""Agents' link to MCP servers, carrying the signed-in user's token — only to the server settings name.

A config's ``mcp_servers`` entries are NAMES. ``settings.mcp_servers`` maps a name to ``"local"`` (the bundled
server: the running stack's ``mcp_url`` from the state file, else ``settings.effective_mcp_url()``), or to a URL
that must equal that same server's URL. Any other name resolves to nothing: no connection, no token.

Each account has its own ``McpLink`` (its own connection and token provider). The token is fetched per HTTP
request through ``BearerTokenAuth`` and re-fetched shortly before it expires; it never sits in headers, configs
or events.

The connection persists across turns: one long-lived task per link connects (initialize, then the tool list once,
cached), waits for a close signal and cleans up — the MCP client's anyio task groups must be entered and exited in
the same task. Turns only ``ensure_connected()``. A transport failure marks the connection stale, so the next use
reconnects (tool cache invalidated); a call that met a gone session or a refused connection (it never ran on the
server) reconnects and is retried once, so a server restart between turns goes unnoticed.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import inspect
import re
import ssl
import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import anyio
import httpx2
from agents.mcp import MCPServerStreamableHttp
from mcp.shared.exceptions import MCPError
from mcp.types import CONNECTION_CLOSED
from pydantic import SecretStr

from console.core.agents.context import AgentContext, CallFailure
from console.core.agents.hooks import McpEventBridge
from console.core.agents.tools import tool_error
from console.core.agents.tracing import mask_text
from console.core.claims import unverified_expiry
from console.core.events import ErrorCode, FailedStep
from console.core.mcp_urls import validate_mcp_url
from console.core.settings import Settings
from mcp_server.redact import redact
from mcp_server.stack_state import StateFileError, read_state

BUNDLED = "local"
# A token provider returns the account's current access token: a str, a SecretStr, or anything with
# ``.token`` (console.core.auth.AccessToken) — sync or async.
TokenProvider = Callable[[], Any]


def _secret(value: Any) -> str:
    value = getattr(value, "token", value)
    return value.get_secret_value() if isinstance(value, SecretStr) else str(value)


_CHALLENGE_PARAM = re.compile(r'(\w+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))')


@dataclass(frozen=True)
class TokenRefusal:
    """The MCP server refused the bearer token: HTTP 401 (missing/invalid/expired) or 403 (insufficient scope)."""

    status: int
    error: str | None = None  # the WWW-Authenticate ``error`` (invalid_token, insufficient_scope)
    description: str | None = None  # its ``error_description``, masked

    @classmethod
    def from_response(cls, response: httpx2.Response) -> TokenRefusal:
        params = parse_bearer_challenge(response.headers.get("www-authenticate", ""))
        description = params.get("error_description")
        return cls(response.status_code, params.get("error"), redact(description) if description else None)

    def detail(self) -> str:
        """E.g. ``HTTP 401 invalid_token (Authentication failed. The provided bearer token is invalid, ...)``."""
        text = f"HTTP {self.status}"
        if self.error:
            text += f" {self.error}"
        if self.description:
            text += f" ({self.description})"
        return text

    def describe(self) -> str:
        return f"the MCP server refused the token: {self.detail()}"

    def failure(self) -> CallFailure:
        """The refusal as data: the server's validation step refused the token with this status."""
        return CallFailure(code=ErrorCode.TOKEN_REFUSED, http_status=self.status, step=FailedStep.VALIDATE)


def parse_bearer_challenge(header: str) -> dict[str, str]:
    """The auth-params of a ``WWW-Authenticate: Bearer k="v", ...`` challenge (RFC 6750 §3)."""
    value = header.strip()
    if value[:6].lower() == "bearer":
        value = value[6:]
    return {
        m.group(1).lower(): m.group(2) if m.group(2) is not None else m.group(3)
        for m in _CHALLENGE_PARAM.finditer(value)
    }


class BearerTokenAuth(httpx2.Auth):
    """``Authorization: Bearer <token>`` on every request, the token fetched from ``provider`` and reused until
    ``refresh_margin`` seconds before its ``exp`` (then fetched again, so a long session never sends a stale one)."""

    def __init__(self, provider: TokenProvider, *, refresh_margin: float = 120.0) -> None:
        self._provider = provider
        self._margin = refresh_margin
        self._token: SecretStr | None = None
        self._exp: float | None = None
        self.fetches = 0  # how many times the provider was asked (tests, diagnostics)
        self.refusal: TokenRefusal | None = None  # the server's last 401/403, until a request succeeds

    def forget(self) -> None:
        """Fetch the token again on the next request (after a step-up signed in anew)."""
        self._token, self._exp = None, None

    async def current_token(self) -> str:
        if self._token is not None and self._exp is not None and self._exp - time.time() > self._margin:
            return self._token.get_secret_value()
        if inspect.iscoroutinefunction(self._provider):
            value = await self._provider()
        else:  # a blocking provider (MSAL refreshing over the network) must not stall the event loop
            value = await asyncio.to_thread(self._provider)
        if inspect.isawaitable(value):
            value = await value
        token = _secret(value)
        self.fetches += 1
        self._token, self._exp = SecretStr(token), unverified_expiry(token)
        return token

    async def async_auth_flow(
        self, request: httpx2.Request
    ) -> AsyncGenerator[httpx2.Request, httpx2.Response]:
        request.headers["Authorization"] = f"Bearer {await self.current_token()}"
        response = yield request
        # The MCP client library turns a 401/403 into a bare "Server returned an error response": keep what the
        # server said (status and WWW-Authenticate error, never the token) so the turn can report a refusal.
        if response.status_code in (401, 403):
            self.refusal = TokenRefusal.from_response(response)
        elif response.status_code < 400:
            self.refusal = None

    def sync_auth_flow(self, request: httpx2.Request) -> Any:
        raise RuntimeError("BearerTokenAuth is async-only")


@dataclass(frozen=True)
class McpTarget:
    """Where the bundled MCP server is, and which CA to trust for it (local stack with https only)."""

    url: str
    verify: bool | str = True


def bundled_target(settings: Settings) -> McpTarget:
    """The bundled server: the running local stack's URL (state file), else the configured URL."""
    if settings.mode == "local":
        try:
            state = read_state(settings.effective_state_file())
        except StateFileError:
            state = None
        if state is not None and state.mcp_url:
            url = validate_mcp_url(state.mcp_url)
            https = urlsplit(url).scheme == "https"
            return McpTarget(url, state.ca_cert if https and state.ca_cert else True)
    url = validate_mcp_url(settings.effective_mcp_url())
    verify: bool | str = str(settings.ca_cert) if settings.ca_cert and settings.mode == "local" else True
    return McpTarget(url, verify)


def resolve_server(name: str, settings: Settings, bundled: McpTarget | None = None) -> McpTarget | None:
    """The target a config's server name stands for, or None (unknown name: no server, no token)."""
    value = (getattr(settings, "mcp_servers", None) or {}).get(name)
    if value is None:
        return None
    target = bundled or bundled_target(settings)
    if value == BUNDLED:
        return target
    try:
        return target if validate_mcp_url(value) == target.url else None
    except Exception:
        return None


def _client_factory(verify: bool | str) -> Callable[..., httpx2.AsyncClient]:
    def create(
        headers: dict[str, str] | None = None, timeout: Any = None, auth: Any = None
    ) -> httpx2.AsyncClient:
        kwargs: dict[str, Any] = {"follow_redirects": False, "trust_env": False}
        if timeout is not None:
            kwargs["timeout"] = timeout
        if headers is not None:
            kwargs["headers"] = headers
        if auth is not None:
            kwargs["auth"] = auth
        # Trust the local CA explicitly (never the environment's bundle variables).
        kwargs["verify"] = ssl.create_default_context(cafile=verify) if isinstance(verify, str) else verify
        return httpx2.AsyncClient(**kwargs)

    return create


# What a call meets when the server's session is gone (a restart: 404 -> "Session terminated") or nobody listens:
# the request never ran there, so reconnecting and sending it again is safe.
_GONE_MARKERS = (
    "session terminated",
    "session not found",
    "connection lost",
    "connection refused",
    "connecterror",
)


def _session_gone(exc: BaseException) -> bool:
    if isinstance(exc, BaseExceptionGroup):
        return any(_session_gone(e) for e in exc.exceptions)
    if isinstance(exc, (httpx2.ConnectError, anyio.ClosedResourceError, anyio.BrokenResourceError)):
        return True
    if exc.__cause__ is not None and exc.__cause__ is not exc and _session_gone(exc.__cause__):
        return True
    text = f"{type(exc).__name__}: {exc}".lower()
    return any(marker in text for marker in _GONE_MARKERS)


# Transport failures of a call that started: the server went away mid-call (killed, crashed, network dropped).
_STOPPED_MARKERS = ("sse stream ended", "connection closed", "server disconnected", "peer closed connection")
STOPPED_HINT = "Check that the stack is running (`obo-console server`), then ask again."
REFUSED_HINT = "Sign in again (`obo-console login`), then ask again."


def _stopped_answering(exc: BaseException) -> bool:
    if isinstance(exc, BaseExceptionGroup):
        return any(_stopped_answering(e) for e in exc.exceptions)
    if isinstance(exc, MCPError) and exc.code == CONNECTION_CLOSED:
        return True
    if isinstance(exc, httpx2.TransportError | anyio.ClosedResourceError | anyio.BrokenResourceError):
        return True
    cause = exc.__cause__
    if cause is not None and cause is not exc and _stopped_answering(cause):
        return True
    return any(marker in str(exc).lower() for marker in _STOPPED_MARKERS)


def _first_line(exc: BaseException) -> str:
    if isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        return _first_line(exc.exceptions[0])
    text = str(exc).splitlines()[0] if str(exc) else ""
    return text or type(exc).__name__


class LinkedServer(MCPServerStreamableHttp):
    """The SDK's server object, owned by an ``McpLink``: failures mark the link stale; a call that met a gone
    session reconnects (through the link's owner task) and is retried once."""

    def __init__(self, link: McpLink, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._link = link

    async def list_tools(self, *args: Any, **kwargs: Any) -> Any:
        return await self._guarded(lambda: super(LinkedServer, self).list_tools(*args, **kwargs))

    async def call_tool(self, *args: Any, **kwargs: Any) -> Any:
        return await self._guarded(lambda: super(LinkedServer, self).call_tool(*args, **kwargs))

    async def _guarded(self, call: Callable[[], Awaitable[Any]]) -> Any:
        try:
            return await call()
        except Exception as exc:
            self._link.mark_stale()
            if not _session_gone(exc):
                raise
            await self._link.ensure_connected()  # a failure here surfaces as the call's failure
            try:
                return await call()
            except Exception:
                self._link.mark_stale()
                raise


class McpLink:
    """One account's MCP connection(s). ``server_for(name)`` gives the SDK server object a config's name stands
    for (all names of the bundled server share one connection), or None."""

    def __init__(
        self,
        settings: Settings,
        token_provider: TokenProvider | None,
        *,
        bridge: McpEventBridge | None = None,
        target: McpTarget | None = None,
        timeout_seconds: float = 60.0,
    ) -> None:
        self.settings = settings
        self.bridge = bridge or McpEventBridge()
        self._token_provider = token_provider
        self._target = target
        self._timeout = timeout_seconds
        self._servers: dict[str, MCPServerStreamableHttp] = {}
        self._owner: asyncio.Task[None] | None = None  # the task holding the connection (see module doc)
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stale = False
        self._ready: asyncio.Future[None] | None = None
        self.connects = 0  # successful connections so far (tests, diagnostics)
        self.auth = BearerTokenAuth(token_provider) if token_provider is not None else None
        self.refused: set[str] = set()  # names that resolved to nothing (reported as notices)

    @property
    def target(self) -> McpTarget:
        if self._target is None:
            self._target = bundled_target(self.settings)
        return self._target

    def server_for(self, name: str) -> MCPServerStreamableHttp | None:
        target = resolve_server(name, self.settings, self._target)
        if target is None:
            self.refused.add(name)
            return None
        if self.auth is None:
            self.refused.add(name)
            return None
        server = self._servers.get(target.url)
        if server is None:
            server = LinkedServer(
                self,
                params={
                    "url": target.url,
                    "auth": self.auth,
                    "timeout": self._timeout,
                    "httpx_client_factory": _client_factory(target.verify),
                },
                name=name,
                cache_tools_list=True,
                use_structured_content=True,  # the model reads {"documents": [...]} as JSON, not as text
                client_session_timeout_seconds=self._timeout,
                message_handler=self.bridge.message_handler,
                tool_meta_resolver=self.bridge.meta_resolver,
                custom_data_extractor=self.bridge.extract,
                failure_error_function=self._tool_error,
            )
            self._servers[target.url] = server
        return server

    def _tool_error(self, ctx: Any, error: Exception) -> str:
        """A failed MCP call as the model and the console see it: say plainly when the server stopped answering
        or refused the token, and leave the headless ``ask`` a hint of what to do (``AgentContext.failure_hints``)."""
        refusal = self.refusal
        if refusal is not None:
            message, hint = f"Tool error: {refusal.describe()}", REFUSED_HINT
            failure = refusal.failure()
        elif _stopped_answering(error):
            detail = mask_text(_first_line(error))
            message, hint = (
                f"Tool error: the MCP server at {self.target.url} stopped answering ({detail})",
                STOPPED_HINT,
            )
            failure = CallFailure(code=ErrorCode.MCP_STOPPED)
        else:
            return tool_error(ctx, error)
        app = getattr(ctx, "context", None)
        call_id = str(getattr(ctx, "tool_call_id", "") or "")
        if isinstance(app, AgentContext) and call_id:
            app.failure_hints[call_id] = hint
            app.call_failures[call_id] = failure
        return message

    @property
    def servers(self) -> list[MCPServerStreamableHttp]:
        return list(self._servers.values())

    @property
    def refusal(self) -> TokenRefusal | None:
        """The server's refusal of the token (401/403) since the last ``connect``, if any."""
        return self.auth.refusal if self.auth is not None else None

    @property
    def connected(self) -> bool:
        ready = self._ready
        return (
            self._owner is not None
            and not self._owner.done()
            and not self._stale
            and ready is not None
            and ready.done()
            and not ready.cancelled()
            and ready.exception() is None
            and self._loop is _running_loop()
        )

    def forget_token(self) -> None:
        """The account signed in again (a step-up): the next request fetches the new token."""
        if self.auth is not None:
            self.auth.forget()

    def mark_stale(self) -> None:
        """The connection failed: the next ``ensure_connected`` reconnects."""
        self._stale = True

    async def ensure_connected(self) -> None:
        """Connect once and reuse it; reconnect when it went stale, its owner ended, or on another event loop.
        Raises what connecting raised (``refusal`` tells a refused token)."""
        if self.connected:
            return
        ready = self._ready
        if (
            ready is not None
            and not ready.done()
            and self._owner is not None
            and not self._owner.done()
            and self._loop is _running_loop()
        ):
            await asyncio.shield(ready)  # another caller is connecting already
            return
        await self._close_owner()
        loop = asyncio.get_running_loop()
        ready = loop.create_future()
        stop = asyncio.Event()
        if self.auth is not None:
            self.auth.refusal = None  # report only what this connection attempt met
        self._loop, self._stop, self._stale, self._ready = loop, stop, False, ready
        # A fresh context: the connection outlives this turn and must not carry its trace/span variables.
        self._owner = loop.create_task(self._own(ready, stop), name="mcp-link", context=contextvars.Context())
        await asyncio.shield(ready)

    async def connect(self) -> None:
        await self.ensure_connected()

    async def _own(self, ready: asyncio.Future[None], stop: asyncio.Event) -> None:
        servers = self.servers
        try:
            try:
                for server in servers:
                    server.invalidate_tools_cache()  # a new session: its tools are fetched again, once
                    await server.connect()
            except BaseException as exc:
                if not ready.done():
                    if isinstance(exc, asyncio.CancelledError):
                        ready.cancel()
                    else:
                        ready.set_exception(exc)
                        ready.exception()  # retrieved: the caller may have gone (cancelled) meanwhile
                if not isinstance(exc, Exception):
                    raise
                return
            self.connects += 1
            if not ready.done():
                ready.set_result(None)
            await stop.wait()
        finally:
            for server in reversed(servers):
                with contextlib.suppress(
                    Exception
                ):  # a broken connection's cleanup: nothing more to do with it
                    await server.cleanup()

    async def _close_owner(self) -> None:
        owner, stop, loop = self._owner, self._stop, self._loop
        self._owner = self._stop = None
        if owner is None or owner.done() or loop is not _running_loop():
            return  # nothing running here (another loop's task went with its loop)
        assert stop is not None
        stop.set()
        with contextlib.suppress(Exception):
            await asyncio.shield(owner)

    async def cleanup(self) -> None:
        """Close the connection and wait until it is closed."""
        await self._close_owner()

    def close(self) -> None:
        """Signal the owner task to close the connection (from any thread; it cleans up on its own loop)."""
        owner, stop, loop = self._owner, self._stop, self._loop
        self._owner = self._stop = None
        if owner is None or stop is None or loop is None or owner.done() or loop.is_closed():
            return
        if loop is _running_loop():
            stop.set()
        else:
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(stop.set)


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


AsyncTokenProvider = Callable[[], Awaitable[Any]]
