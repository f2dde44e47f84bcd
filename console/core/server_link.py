"""The console's link to the MCP server: find, launch, check and watch it.

Local mode: attach to a running local stack (state file + live pid + ``/healthz``) or launch
``obo-console server`` in its own process group, capture its log, wait until it is ready, and stop it on close
only if this link launched it. ``--connect URL``: before any token is sent, the URL's origin must be trusted
(``mcp_trust``: the configured server, ``OBO_CONSOLE_TRUSTED_MCP_URLS``, or a person's remembered confirmation),
and the server's RFC 9728 protected-resource metadata must name this URL as its resource, the configured authority
and the API's identifier.

A watcher thread polls ``/healthz``; when the server goes away the link says so and reconnects with capped
exponential backoff. Status changes go to callbacks and, as events, to an ``EventBus``. All blocking I/O runs
in threads: asyncio apps call ``astart()``/``aclose()`` or subscribe and marshal to their loop.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

import requests

from console.core.clock import Clock, SystemClock
from console.core.events import EventBus, Notice, ServerStatusChanged
from console.core.mcp_urls import is_loopback_host, validate_mcp_url
from console.core.settings import Settings
from mcp_server.errors import UserError
from mcp_server.paths import data_dir
from mcp_server.processes import pid_alive
from mcp_server.stack_state import StackState, StateFileError, read_state

if TYPE_CHECKING:
    from console.core.mcp_trust import TrustPrompt

# ---------------------------------------------------------------------------------------------------------------
# URLs


class LinkState(StrEnum):
    CONNECTING = "connecting"
    READY = "ready"
    DOWN = "down"
    RECONNECTING = "reconnecting"
    STOPPED = "stopped"


@dataclass(frozen=True)
class LinkStatus:
    """Where the link stands. ``retry_at`` is epoch seconds (a UI counts down to it with its clock)."""

    state: LinkState
    url: str | None = None
    attempt: int = 0
    next_retry_in: float | None = None
    retry_at: float | None = None
    launched: bool = False
    detail: str = ""

    @property
    def ready(self) -> bool:
        return self.state is LinkState.READY

    def describe(self) -> str:
        where = self.url or "the MCP server"
        match self.state:
            case LinkState.CONNECTING:
                return f"connecting to {where}" + (f" ({self.detail})" if self.detail else "")
            case LinkState.READY:
                return f"connected to {where}" + (" (started by the console)" if self.launched else "")
            case LinkState.DOWN:
                return f"{where} is not answering" + (f": {self.detail}" if self.detail else "")
            case LinkState.RECONNECTING:
                wait = f" in {self.next_retry_in:.1f} s" if self.next_retry_in is not None else ""
                return f"reconnecting to {where} (attempt {self.attempt}{wait})"
            case LinkState.STOPPED:
                return "disconnected" + (f": {self.detail}" if self.detail else "")
        return self.state.value


@dataclass(frozen=True)
class LogLine:
    """One line the launched server printed."""

    ts: float
    stream: str  # stdout | stderr
    text: str


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "", "", ""))


def health_url(mcp_url: str) -> str:
    return _origin(mcp_url) + "/healthz"


def metadata_url(mcp_url: str) -> str:
    """RFC 9728 path-inserted well-known URL: https://host/.well-known/oauth-protected-resource/<path>."""
    path = urlsplit(mcp_url).path.rstrip("/")
    return _origin(mcp_url) + "/.well-known/oauth-protected-resource" + path


# ---------------------------------------------------------------------------------------------------------------
# Protected-resource metadata check (--connect)


@dataclass(frozen=True)
class ResourceMetadata:
    resource: str | None
    authorization_servers: list[str]
    scopes_supported: list[str]


def api_identifier(api_client_id: str | None, api_scope: str | None = None) -> str | None:
    """The API's identifier URI: the scope minus its last segment (``api://<id>/execute`` → ``api://<id>``)."""
    if api_scope and "/" in api_scope.removeprefix("api://"):
        return api_scope.rsplit("/", 1)[0]
    return f"api://{api_client_id}" if api_client_id else None


def _norm(value: str) -> str:
    return value.strip().rstrip("/").lower()


def check_resource_metadata(
    document: dict[str, Any], *, url: str, authority: str, identifier: str
) -> ResourceMetadata:
    """Accept the metadata only if its ``resource`` is ``url`` (RFC 9728 §3.3) and it names ``authority`` (or its
    v2.0 issuer) and the API ``identifier``."""
    from console.core.mcp_trust import check_resource

    check_resource(document.get("resource"), url)  # a copy of another server's metadata names that server
    servers = [s for s in document.get("authorization_servers") or [] if isinstance(s, str)]
    scopes = [s for s in document.get("scopes_supported") or [] if isinstance(s, str)]
    resource = document.get("resource") if isinstance(document.get("resource"), str) else None
    meta = ResourceMetadata(resource=resource, authorization_servers=servers, scopes_supported=scopes)
    claimed = (
        f"it claims authorization_servers={servers or '[]'}, scopes_supported={scopes or '[]'}, "
        f"resource={resource!r}"
    )
    accepted = {_norm(authority), _norm(authority) + "/v2.0"}
    if not any(_norm(s) in accepted for s in servers):
        raise UserError(
            f"Refusing to connect to {url}: its protected-resource metadata does not name this console's "
            f"authority {authority}; {claimed}. No token was sent.",
            hint="Check the URL, or configure the authority that server trusts (OBO_CONSOLE_AUTHORITY).",
        )
    ident = _norm(identifier)
    named = [s for s in [*scopes, resource or ""] if _norm(s) == ident or _norm(s).startswith(ident + "/")]
    if not named:
        raise UserError(
            f"Refusing to connect to {url}: its protected-resource metadata does not name the API {identifier}; "
            f"{claimed}. No token was sent.",
            hint="Check the URL, or configure the API that server protects (OBO_CONSOLE_API_CLIENT_ID).",
        )
    return meta


def fetch_resource_metadata(
    url: str, *, authority: str, identifier: str, verify: bool | str = True, timeout: float = 5.0
) -> ResourceMetadata:
    """GET the server's protected-resource metadata (no token) and check it (``check_resource_metadata``)."""
    where = metadata_url(url)
    try:
        response = _get(where, verify=verify, timeout=timeout)
    except requests.RequestException as exc:
        raise UserError(
            f"Cannot read {where} to check the server before connecting: {_short(exc)}.",
            hint="Is the server running, and is the URL right?",
        ) from exc
    if response.status_code != 200:
        raise UserError(
            f"Refusing to connect to {url}: {where} answered HTTP {response.status_code}, so the server does not "
            "say which authority it trusts. No token was sent.",
            hint="The server must publish RFC 9728 protected-resource metadata for its MCP path.",
        )
    try:
        document = response.json()
    except ValueError as exc:
        raise UserError(f"Refusing to connect to {url}: {where} did not return JSON. No token was sent.") from exc
    if not isinstance(document, dict):
        raise UserError(f"Refusing to connect to {url}: {where} is not a JSON object. No token was sent.")
    return check_resource_metadata(document, url=url, authority=authority, identifier=identifier)


# ---------------------------------------------------------------------------------------------------------------
# HTTP helpers: explicit trust, never the machine's CA-bundle variables.


def _get(url: str, *, verify: bool | str, timeout: float) -> requests.Response:
    with requests.Session() as session:
        session.trust_env = False  # REQUESTS_CA_BUNDLE & proxies must not decide trust (docs/contracts.md)
        session.verify = verify
        return session.get(url, timeout=timeout, allow_redirects=False)


def _short(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) < 200 else text[:197] + "..."


def probe_health(url: str, *, verify: bool | str = True, timeout: float = 2.0) -> tuple[bool, str]:
    """(ready, detail) from ``/healthz``; a server without ``/healthz`` counts as up if its metadata answers."""
    try:
        response = _get(health_url(url), verify=verify, timeout=timeout)
    except requests.RequestException as exc:
        return False, _short(exc)
    if response.status_code == 200:
        return True, "healthy"
    if response.status_code == 404:
        try:
            meta = _get(metadata_url(url), verify=verify, timeout=timeout)
        except requests.RequestException as exc:
            return False, _short(exc)
        return (meta.status_code == 200), f"no /healthz; metadata HTTP {meta.status_code}"
    return False, f"/healthz answered HTTP {response.status_code}: {_health_detail(response)}"


def _health_detail(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    return json.dumps(body, separators=(",", ":"))[:200]


# ---------------------------------------------------------------------------------------------------------------
# The launched server process


class _ServerProcess:
    """``obo-console server`` in its own process group, its output captured line by line."""

    def __init__(
        self,
        command: Sequence[str],
        env: dict[str, str],
        on_line: Callable[[LogLine], None],
        now: Callable[[], float] = time.time,
    ) -> None:
        self.command = list(command)
        self._on_line = on_line
        self._now = now
        self.proc = subprocess.Popen(
            self.command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            start_new_session=True,  # its own process group: signals reach the whole stack, not the console
            text=True,
            encoding="utf-8",
            errors="replace",
            bufsize=1,
        )
        self._readers = [
            threading.Thread(target=self._pump, args=(self.proc.stdout, "stdout"), daemon=True, name="server-out"),
            threading.Thread(target=self._pump, args=(self.proc.stderr, "stderr"), daemon=True, name="server-err"),
        ]
        for reader in self._readers:
            reader.start()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def exit_code(self) -> int | None:
        return self.proc.poll()

    def _pump(self, stream: Any, name: str) -> None:
        with contextlib.suppress(ValueError, OSError):
            for raw in stream:
                self._on_line(LogLine(ts=self._now(), stream=name, text=raw.rstrip("\r\n")))

    def stop(self, grace: float = 10.0) -> int | None:
        """SIGTERM the process group, SIGKILL after ``grace`` seconds; returns the exit code."""
        if self.proc.poll() is None:
            self._signal(signal.SIGTERM)
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                self._signal(signal.SIGKILL)
                self.proc.wait(5)
        else:
            self._signal(signal.SIGKILL)  # the leader is gone; make sure nothing it started lingers
        for reader in self._readers:
            reader.join(2)
        for stream in (self.proc.stdout, self.proc.stderr):
            with contextlib.suppress(Exception):
                stream.close()  # type: ignore[union-attr]
        return self.proc.returncode

    def _signal(self, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, sig)


# Links that launched a server, stopped at interpreter exit if nobody closed them (never leave a stack running).
# Strong references: a link dropped without close() must still stop its server.
_LIVE_LINKS: set[ServerLink] = set()


@atexit.register
def _stop_launched_servers() -> None:
    for link in list(_LIVE_LINKS):
        with contextlib.suppress(Exception):
            link.close()


# ---------------------------------------------------------------------------------------------------------------
# The link


StatusCallback = Callable[[LinkStatus], None]
LogCallback = Callable[[LogLine], None]


@dataclass
class LinkTimings:
    """How patient the link is. Tests shorten these."""

    startup_timeout: float = 60.0  # launch → state file + /healthz
    poll_interval: float = 1.0  # /healthz while ready
    probe_timeout: float = 2.0
    backoff_base: float = 0.5
    backoff_max: float = 10.0
    stop_grace: float = 10.0  # SIGTERM → SIGKILL


@dataclass
class _Callbacks:
    status: dict[str, StatusCallback] = field(default_factory=dict)
    log: dict[str, LogCallback] = field(default_factory=dict)


class ServerLink:
    """Connects the console to its MCP server and keeps watching it.

    ``connect_url`` (the user's ``--connect``) switches to remote mode: the server is checked, never launched.
    Otherwise, in local mode the local stack is found or launched; in Azure mode ``settings.mcp_url`` is used.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        connect_url: str | None = None,
        bus: EventBus | None = None,
        clock: Clock | None = None,
        launch: bool = True,
        server_command: Sequence[str] | None = None,
        timings: LinkTimings | None = None,
        log_capacity: int = 2000,
        trust_prompt: TrustPrompt | None = None,
    ) -> None:
        self.settings = settings
        self.connect_url = validate_mcp_url(connect_url) if connect_url else None
        # Asked (from the link's thread) whether a --connect origin no rule trusts may get the token; None: refuse.
        self.trust_prompt = trust_prompt
        self.trusted_because: str | None = None
        self.bus = bus
        self.clock: Clock = clock or SystemClock()
        self.launch_allowed = launch
        self.server_command = list(server_command) if server_command else None
        self.timings = timings or LinkTimings()
        self._log: deque[LogLine] = deque(maxlen=log_capacity)
        self._callbacks = _Callbacks()
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._status = LinkStatus(LinkState.STOPPED, detail="not started")
        self._url: str | None = None
        self._state: StackState | None = None
        self._verify: bool | str = True
        self._process: _ServerProcess | None = None
        self._launched_ever = False
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None
        self._closed = False
        self.metadata: ResourceMetadata | None = None

    # -- what the UI reads ------------------------------------------------------------------------------------

    @property
    def status(self) -> LinkStatus:
        with self._lock:
            return self._status

    @property
    def mcp_url(self) -> str | None:
        """The MCP URL tokens may go to (None until the link has accepted a server)."""
        with self._lock:
            return self._url

    @property
    def stack_state(self) -> StackState | None:
        """The local stack's state file contents (local mode), as last read."""
        with self._lock:
            return self._state

    @property
    def launched(self) -> bool:
        """True while this link owns a server process it started (and will stop on close)."""
        with self._lock:
            return self._process is not None

    @property
    def server_pid(self) -> int | None:
        with self._lock:
            return self._process.pid if self._process else None

    @property
    def tls_verify(self) -> bool | str:
        """What HTTPS clients of the MCP server should trust: the local CA for a loopback stack, else default."""
        with self._lock:
            return self._verify

    def log_tail(self, n: int | None = None) -> list[LogLine]:
        with self._lock:
            lines = list(self._log)
        return lines if n is None else lines[-n:]

    def subscribe_status(self, callback: StatusCallback, *, replay: bool = True) -> Callable[[], None]:
        """Call ``callback(status)`` on every change (from the link's threads; marshal to your loop)."""
        token = uuid.uuid4().hex
        with self._lock:
            self._callbacks.status[token] = callback
            current = self._status
        if replay:
            callback(current)
        return lambda: self._callbacks.status.pop(token, None)  # type: ignore[func-returns-value]

    def subscribe_log(self, callback: LogCallback, *, replay: bool = True) -> Callable[[], None]:
        """Call ``callback(line)`` for each line the launched server prints (after replaying the buffer)."""
        token = uuid.uuid4().hex
        with self._lock:
            self._callbacks.log[token] = callback
            backlog = list(self._log) if replay else []
        for line in backlog:
            callback(line)
        return lambda: self._callbacks.log.pop(token, None)  # type: ignore[func-returns-value]

    @contextlib.asynccontextmanager
    async def status_stream(self) -> AsyncIterator[asyncio.Queue[LinkStatus]]:
        """A queue of status changes delivered on the caller's loop (starting with the current status)."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[LinkStatus] = asyncio.Queue()
        unsubscribe = self.subscribe_status(lambda s: loop.call_soon_threadsafe(queue.put_nowait, s))
        try:
            yield queue
        finally:
            unsubscribe()

    def wait_for(self, *states: LinkState, timeout: float = 30.0) -> LinkStatus:
        """Block until the status is one of ``states`` (for headless commands and tests)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while self._status.state not in states:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"server link still {self._status.describe()} after {timeout} s")
                self._changed.wait(left)
            return self._status

    # -- lifecycle --------------------------------------------------------------------------------------------

    def start(self) -> LinkStatus:
        """Find, launch or check the server, then watch it. Blocking; raises ``UserError`` when it cannot."""
        if self._closed:
            raise RuntimeError("this ServerLink was closed; make a new one")
        if self._watcher is not None:
            return self.status  # already started (and watching)
        self._set_status(LinkState.CONNECTING, detail="looking for the server")
        try:
            if self.connect_url:
                self._connect_remote(self.connect_url)
            elif self.settings.mode == "local" and not self.settings.mcp_url:
                self._connect_local()
            else:
                self._connect_configured()
        except BaseException as exc:
            detail = exc.message if isinstance(exc, UserError) else _short(exc)
            self._set_status(LinkState.DOWN, detail=detail, notify_level="error")
            self._stop_process()
            raise
        self._set_status(LinkState.READY, notify_level="info")
        self._watcher = threading.Thread(target=self._watch, name="server-link-watch", daemon=True)
        self._watcher.start()
        return self.status

    async def astart(self) -> LinkStatus:
        return await asyncio.to_thread(self.start)

    def close(self) -> None:
        """Stop watching; stop the server only if this link launched it. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._stop.set()
        if self._watcher is not None and self._watcher is not threading.current_thread():
            self._watcher.join(self.timings.probe_timeout + 5)
        code = self._stop_process()
        detail = "closed" + (f"; stopped the server it started (exit code {code})" if code is not None else "")
        self._set_status(LinkState.STOPPED, detail=detail)
        _LIVE_LINKS.discard(self)

    async def aclose(self) -> None:
        await asyncio.to_thread(self.close)

    def __enter__(self) -> ServerLink:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- connecting -------------------------------------------------------------------------------------------

    def _state_path(self) -> Path:
        return self.settings.effective_state_file()

    def _read_state(self) -> StackState | None:
        try:
            return read_state(self._state_path())
        except StateFileError:
            return None  # half-written files are impossible (atomic); an invalid one is treated as absent

    def _running_stack(self) -> StackState | None:
        """The state of a live local stack, or None (no file, dead pid, or no MCP URL yet)."""
        state = self._read_state()
        if state is None or not state.mcp_url:
            return None
        if state.pid is not None and not pid_alive(state.pid):
            return None  # a stack that died without cleaning up
        return state

    def _adopt_state(self, state: StackState) -> None:
        assert state.mcp_url
        url = validate_mcp_url(state.mcp_url)
        verify: bool | str = True
        if urlsplit(url).scheme == "https" and state.ca_cert:
            verify = state.ca_cert
        with self._lock:
            self._state = state
            self._url = url
            self._verify = verify

    def _connect_local(self) -> None:
        state = self._running_stack()
        if state is not None and self._answers(state):
            self._adopt_state(state)
            self._wait_healthy(self.timings.startup_timeout, process=None)  # answering, maybe not ready yet
            return
        if not self.launch_allowed:
            raise UserError(
                f"No local stack is running (no live state file at {self._state_path()}).",
                hint="Start it with `obo-console server`, or let the console launch it.",
            )
        self._launch_and_wait()

    def _answers(self, state: StackState) -> bool:
        """Whether anything answers HTTP at the stack's address (a state file whose pid was reused by another
        process, or whose stack hangs without listening, does not count as a running stack)."""
        if not state.mcp_url:
            return False
        try:
            url = validate_mcp_url(state.mcp_url)
            verify = state.ca_cert if (urlsplit(url).scheme == "https" and state.ca_cert) else True
            _get(health_url(url), verify=verify, timeout=self.timings.probe_timeout)
        except (requests.RequestException, UserError):
            return False
        return True

    def _connect_configured(self) -> None:
        url = validate_mcp_url(self.settings.effective_mcp_url())
        with self._lock:
            self._url = url
            self._verify = str(self.settings.ca_cert) if (self.settings.ca_cert and self.settings.mode == "local") else True
        self._wait_healthy(self.timings.startup_timeout, process=None)

    def _connect_remote(self, url: str) -> None:
        from console.core.mcp_trust import require_trusted

        authority, identifier, verify = self._expected_identity()
        # Trust first: an origin nobody trusts is sent nothing at all, not even the metadata request.
        self._set_status(LinkState.CONNECTING, detail="checking that you trust its origin", url=url)
        self.trusted_because = require_trusted(
            url, settings=self.settings, audience=identifier, authority=authority, prompt=self.trust_prompt
        )
        if self.bus is not None:
            self.bus.publish(Notice(message=f"{url}: origin trusted ({self.trusted_because})", source="server"))
        self._set_status(LinkState.CONNECTING, detail="checking its protected-resource metadata", url=url)
        self.metadata = fetch_resource_metadata(
            url, authority=authority, identifier=identifier, verify=verify, timeout=self.timings.probe_timeout + 3
        )
        with self._lock:
            self._url = url
            self._verify = verify

    def _expected_identity(self) -> tuple[str, str, bool | str]:
        """The authority and API identifier this console signs in for, and what to trust for the metadata GET."""
        from console.core.endpoints import resolve_endpoints

        try:
            endpoints = resolve_endpoints(self.settings)
        except UserError as exc:
            raise UserError(
                f"Cannot check {self.connect_url} before connecting: this console does not know which authority "
                f"and API to expect ({exc.message})",
                hint=exc.hint or "Start the local stack, or set OBO_CONSOLE_AUTHORITY and OBO_CONSOLE_API_CLIENT_ID.",
            ) from exc
        identifier = api_identifier(endpoints.api_client_id, endpoints.api_scope)
        if not identifier:
            raise UserError("Cannot check the server: no API identifier is configured (OBO_CONSOLE_API_CLIENT_ID).")
        verify: bool | str = True
        host = urlsplit(self.connect_url or "").hostname
        if endpoints.mode == "local" and endpoints.ca_cert and is_loopback_host(host):
            verify = str(endpoints.ca_cert)  # the local CA only for loopback servers, and never in Azure mode
        if endpoints.mode == "local" and self.settings.mode == "local":
            with self._lock:
                self._state = self._read_state()
        return endpoints.authority.rstrip("/"), identifier, verify

    def _command(self) -> list[str]:
        if self.server_command:
            return list(self.server_command)
        return [sys.executable, "-m", "console.cli", "--state-file", str(self._state_path()), "server"]

    def _child_env(self) -> dict[str, str]:
        env = dict(os.environ)
        s = self.settings
        env.update(
            {
                "PYTHONUNBUFFERED": "1",
                "OBO_CONSOLE_PARENT_PID": str(os.getpid()),  # the server stops if the console dies hard
                "OBO_CONSOLE_HOME": str(data_dir().resolve()),  # the console's --home, given to the child alone
                "OBO_CONSOLE_MODE": s.mode,
                "OBO_CONSOLE_STATE_FILE": str(self._state_path()),
                "OBO_CONSOLE_MCP_HOST": s.mcp_host,
                "OBO_CONSOLE_MCP_PORT": str(s.mcp_port),
                "OBO_CONSOLE_IDENTITY_PORT": str(s.identity_port),
                "OBO_CONSOLE_SEARCH_PORT": str(s.search_port),
                "OBO_CONSOLE_CALCULATOR_PORT": str(s.calculator_port),
            }
        )
        env.update(self._pinned_ports())
        return env

    def _pinned_ports(self) -> dict[str, str]:
        """A relaunched stack comes back on the ports it had, so its issuer, URLs and signed-in tokens stay valid."""
        with self._lock:
            state = self._state if self._launched_ever else None
        if state is None:
            return {}
        pinned: dict[str, str] = {}
        for env_name, url in (
            ("OBO_CONSOLE_MCP_PORT", state.mcp_url),
            ("OBO_CONSOLE_IDENTITY_PORT", state.authority),
            ("OBO_CONSOLE_SEARCH_PORT", state.search_endpoint),
            ("OBO_CONSOLE_CALCULATOR_PORT", getattr(state, "calculator_url", None)),
        ):
            port = urlsplit(str(url)).port if url else None
            if port:
                pinned[env_name] = str(port)
        return pinned

    def _launch_and_wait(self) -> None:
        # A stale state file (its stack died) must not be mistaken for the new stack's.
        stale = self._read_state()
        if stale is not None and not pid_alive(stale.pid):
            self._state_path().unlink(missing_ok=True)
        self._append_log(LogLine(self.clock.time(), "console", f"starting the local stack: {' '.join(self._command())}"))
        process = _ServerProcess(self._command(), self._child_env(), self._append_log, self.clock.time)
        with self._lock:
            self._process = process
            self._launched_ever = True
        _LIVE_LINKS.add(self)
        self._set_status(LinkState.CONNECTING, detail=f"started the local stack (pid {process.pid}); waiting")
        deadline = time.monotonic() + self.timings.startup_timeout
        while True:
            state = self._read_state()
            if state is not None and state.mcp_url and self._is_from(state, process):
                break
            self._check_alive(process)
            if time.monotonic() > deadline:
                raise self._startup_error(f"it wrote no state file within {self.timings.startup_timeout:.0f} s")
            if self._stop.wait(0.05):
                raise UserError("Stopped while waiting for the local stack to start.")
        self._adopt_state(state)
        self._wait_healthy(max(1.0, deadline - time.monotonic()), process=process)

    @staticmethod
    def _is_from(state: StackState, process: _ServerProcess) -> bool:
        if state.pid is not None:
            return state.pid == process.pid
        return True  # no pid in the file: a stale one was removed before the launch, so this one is new

    def _check_alive(self, process: _ServerProcess | None) -> None:
        if process is not None and (code := process.exit_code()) is not None:
            raise self._startup_error(f"it exited with code {code}")

    def _wait_healthy(self, timeout: float, *, process: _ServerProcess | None) -> None:
        url = self.mcp_url
        assert url
        deadline = time.monotonic() + timeout
        detail = ""
        while True:
            ok, detail = probe_health(url, verify=self.tls_verify, timeout=self.timings.probe_timeout)
            if ok:
                return
            self._check_alive(process)
            if time.monotonic() > deadline:
                if process is not None:
                    raise self._startup_error(f"{health_url(url)} was not ready within {timeout:.0f} s ({detail})")
                raise UserError(
                    f"The MCP server at {url} is not ready: {detail}.",
                    hint="Is the server running? Start it with `obo-console server`, or check --connect / "
                    "OBO_CONSOLE_MCP_URL.",
                )
            if self._stop.wait(0.1):
                raise UserError("Stopped while waiting for the MCP server.")

    def _startup_error(self, what: str) -> UserError:
        lines = "\n".join(f"    {line.text}" for line in self.log_tail(15) if line.stream != "console")
        return UserError(
            f"The local stack did not start: {what}." + (f"\n  Its last log lines:\n{lines}" if lines else ""),
            hint="Run `obo-console server` yourself to see the full log; another process may hold its ports "
            "(OBO_CONSOLE_MCP_PORT, OBO_CONSOLE_IDENTITY_PORT, ...).",
        )

    def _stop_process(self) -> int | None:
        with self._lock:
            process, self._process = self._process, None
        if process is None:
            return None
        self._append_log(LogLine(self.clock.time(), "console", f"stopping the local stack (pid {process.pid})"))
        return process.stop(self.timings.stop_grace)

    # -- watching ---------------------------------------------------------------------------------------------

    def _watch(self) -> None:
        while not self._stop.wait(self.timings.poll_interval):
            url = self.mcp_url
            if url is None:
                continue
            ok, detail = probe_health(url, verify=self.tls_verify, timeout=self.timings.probe_timeout)
            if ok:
                continue
            if self._stop.is_set():
                return
            process = self._process
            if process is not None and (code := process.exit_code()) is not None:
                detail = f"the local stack exited with code {code}"
            self._set_status(LinkState.DOWN, detail=detail, notify_level="warning")
            self._reconnect()

    def _reconnect(self) -> None:
        attempt = 0
        while not self._stop.is_set():
            attempt += 1
            delay = min(self.timings.backoff_max, self.timings.backoff_base * 2 ** (attempt - 1))
            self._set_status(
                LinkState.RECONNECTING,
                attempt=attempt,
                next_retry_in=delay,
                retry_at=self.clock.time() + delay,
                detail=self.status.detail,
            )
            if self._stop.wait(delay):
                return
            try:
                if self._try_reconnect():
                    self._set_status(LinkState.READY, detail=f"reconnected after {attempt} attempt(s)",
                                     notify_level="info")
                    return
            except UserError as exc:
                self._set_status(LinkState.RECONNECTING, attempt=attempt, detail=exc.message)
            except Exception as exc:  # keep watching whatever goes wrong; the UI shows the detail
                self._set_status(LinkState.RECONNECTING, attempt=attempt, detail=_short(exc))

    def _try_reconnect(self) -> bool:
        if self.connect_url:
            # The origin's trust was settled at start (it cannot change: same URL). Whatever answers there now
            # must prove again, in its metadata, who it is and who it trusts before a token goes to it.
            authority, identifier, verify = self._expected_identity()
            self.metadata = fetch_resource_metadata(
                self.connect_url, authority=authority, identifier=identifier, verify=verify,
                timeout=self.timings.probe_timeout,
            )
            ok, _ = probe_health(self.connect_url, verify=verify, timeout=self.timings.probe_timeout)
            return ok
        if self.settings.mode == "local" and not self.settings.mcp_url:
            return self._reconnect_local()
        url = self.mcp_url
        assert url
        ok, _ = probe_health(url, verify=self.tls_verify, timeout=self.timings.probe_timeout)
        return ok

    def _reconnect_local(self) -> bool:
        process = self._process
        if process is not None and process.exit_code() is not None:
            self._stop_process()
        state = self._running_stack()
        if state is None:
            if self._launched_ever and self._process is None:
                # The console started this stack and it died: start it again (stopped again on close).
                try:
                    self._launch_and_wait()
                except BaseException:
                    self._stop_process()  # a half-started stack must not linger between attempts
                    raise
                return True
            return False
        self._adopt_state(state)  # a restarted stack may listen elsewhere; the state file says where
        ok, _ = probe_health(state.mcp_url or "", verify=self.tls_verify, timeout=self.timings.probe_timeout)
        return ok

    # -- publishing -------------------------------------------------------------------------------------------

    def _set_status(
        self,
        state: LinkState,
        *,
        detail: str = "",
        attempt: int = 0,
        next_retry_in: float | None = None,
        retry_at: float | None = None,
        url: str | None = None,
        notify_level: str | None = None,
    ) -> None:
        with self._changed:
            if self._closed and state is not LinkState.STOPPED:
                return  # a late update from a thread that was stopping must not revive a closed link
            status = LinkStatus(
                state=state,
                url=url or self._url,
                attempt=attempt,
                next_retry_in=next_retry_in,
                retry_at=retry_at,
                launched=self._process is not None,
                detail=detail,
            )
            if status == self._status:
                return
            self._status = status
            self._changed.notify_all()
            callbacks = list(self._callbacks.status.values())
        for callback in callbacks:
            callback(status)
        if self.bus is not None:
            self.bus.publish(
                ServerStatusChanged(
                    state=status.state.value,
                    url=status.url,
                    attempt=status.attempt,
                    next_retry_in=status.next_retry_in,
                    launched=status.launched,
                    detail=status.detail,
                )
            )
            if notify_level is not None:
                self.bus.publish(Notice(level=notify_level, message=status.describe(), source="server"))

    def _append_log(self, line: LogLine) -> None:
        with self._lock:
            self._log.append(line)
            callbacks = list(self._callbacks.log.values())
        for callback in callbacks:
            callback(line)
