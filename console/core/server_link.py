"""The console's link to the MCP server: find, launch, check and watch it.

Local mode: attach to a running local stack (state file + live pid + ``/healthz``) or launch
``obo-console server`` in its own process group (``stack_launch``), capture its log, wait until it answers, and stop
it on close only if this link launched it. ``--connect URL``: before any token is sent, the URL's origin must be
trusted (``mcp_trust``: the configured server, ``OBO_CONSOLE_TRUSTED_MCP_URLS``, or a person's remembered
confirmation), and the server's RFC 9728 protected-resource metadata must name this URL as its resource, the
configured authority and the API's identifier (``server_checks``).

A watcher thread (``link_watch``) polls ``/healthz``: a server that answers but names parts that are not ready is
DEGRADED (turns still go to it); one that stops answering is DOWN, and the link reconnects with capped exponential
backoff. Status changes go to callbacks and, as events, to an ``EventBus``. All blocking I/O runs in threads: asyncio
apps call ``start()`` in a worker thread, or subscribe and marshal to their loop.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from urllib.parse import urlsplit

from console.core.clock import Clock, SystemClock
from console.core.endpoints import resolve_endpoints
from console.core.events import EventBus, Notice, ServerStatusChanged
from console.core.link_state import LinkState, LinkStatus, LinkTimings, LogLine
from console.core.link_watch import HealthWatcher
from console.core.mcp_trust import TrustPrompt, require_trusted
from console.core.mcp_urls import is_loopback_host, validate_mcp_url
from console.core.server_checks import (
    Health,
    ResourceMetadata,
    api_identifier,
    fetch_resource_metadata,
    health_url,
    probe_health,
    short_error,
)
from console.core.settings import Settings
from console.core.stack_launch import LogCallback, ServerLog, StackLauncher
from mcp_server.errors import UserError
from mcp_server.stack_state import StackState

log = logging.getLogger(__name__)

StatusCallback = Callable[[LinkStatus], None]

# Links that launched a server, stopped at interpreter exit if nobody closed them (never leave a stack running).
# Strong references: a link dropped without close() must still stop its server.
_LIVE_LINKS: set[ServerLink] = set()


@atexit.register
def _stop_launched_servers() -> None:
    for link in list(_LIVE_LINKS):
        try:
            link.close()
        except Exception:  # the next link's server must still be stopped
            log.exception("stopping the local stack a link launched (%s)", link.mcp_url)


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
        self.timings = timings or LinkTimings()
        self._log = ServerLog(log_capacity)
        self._stop = threading.Event()
        self._stack = StackLauncher(
            settings,
            timings=self.timings,
            clock=self.clock,
            log=self._log,
            stop=self._stop,
            server_command=server_command,
        )
        self._status_callbacks: dict[str, StatusCallback] = {}
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._status = LinkStatus(LinkState.STOPPED, detail="not started")
        self._url: str | None = None
        self._state: StackState | None = None
        self._verify: bool | str = True
        self._watcher: HealthWatcher | None = None
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
        return self._stack.launched

    @property
    def server_pid(self) -> int | None:
        return self._stack.pid

    @property
    def tls_verify(self) -> bool | str:
        """What HTTPS clients of the MCP server should trust: the local CA for a loopback stack, else default."""
        with self._lock:
            return self._verify

    def log_tail(self, n: int | None = None) -> list[LogLine]:
        return self._log.tail(n)

    def subscribe_status(self, callback: StatusCallback, *, replay: bool = True) -> Callable[[], None]:
        """Call ``callback(status)`` on every change (from the link's threads; marshal to your loop)."""
        token = uuid.uuid4().hex
        with self._lock:
            self._status_callbacks[token] = callback
            current = self._status
        if replay:
            callback(current)

        def unsubscribe() -> None:
            with self._lock:
                self._status_callbacks.pop(token, None)

        return unsubscribe

    def subscribe_log(self, callback: LogCallback, *, replay: bool = True) -> Callable[[], None]:
        """Call ``callback(line)`` for each line the launched server prints (after replaying the buffer)."""
        return self._log.subscribe(callback, replay=replay)

    @contextlib.asynccontextmanager
    async def status_stream(self) -> AsyncIterator[asyncio.Queue[LinkStatus]]:
        """A queue of status changes delivered on the caller's loop (starting with the current status)."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[LinkStatus] = asyncio.Queue()

        def deliver(status: LinkStatus) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, status)

        unsubscribe = self.subscribe_status(deliver)
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
                health = self._connect_remote(self.connect_url)
            elif self.settings.mode == "local" and not self.settings.mcp_url:
                health = self._connect_local()
            else:
                health = self._connect_configured()
        except BaseException as exc:  # also KeyboardInterrupt: a half-started stack must not linger
            detail = exc.message if isinstance(exc, UserError) else short_error(exc)
            self._set_status(LinkState.DOWN, detail=detail, notify_level="error")
            self._stack.stop()
            raise
        degraded = health.state is LinkState.DEGRADED
        self._set_status(
            health.state,
            detail=health.detail if degraded else "",
            notify_level="warning" if degraded else "info",
        )
        self._watcher = HealthWatcher(
            self, self._set_status, timings=self.timings, clock=self.clock, stop=self._stop
        )
        self._watcher.start()
        return self.status

    def close(self) -> None:
        """Stop watching; stop the server only if this link launched it. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._stop.set()
        if self._watcher is not None:
            self._watcher.join(self.timings.probe_timeout + 5)
        code = self._stack.stop()
        detail = "closed" + (
            f"; stopped the server it started (exit code {code})" if code is not None else ""
        )
        self._set_status(LinkState.STOPPED, detail=detail)
        _LIVE_LINKS.discard(self)

    def __enter__(self) -> ServerLink:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- connecting -------------------------------------------------------------------------------------------

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

    def _connect_local(self) -> Health:
        state = self._stack.running_stack()
        if state is not None and self._stack.answers(state):
            self._adopt_state(state)
            return self._wait_answering(self.timings.startup_timeout, launched=False)  # maybe not ready yet
        if not self.launch_allowed:
            raise UserError(
                f"No local stack is running (no live state file at {self._stack.state_path()}).",
                hint="Start it with `obo-console server`, or let the console launch it.",
            )
        return self._launch_and_wait()

    def _connect_configured(self) -> Health:
        url = validate_mcp_url(self.settings.effective_mcp_url())
        local_ca = self.settings.ca_cert and self.settings.mode == "local"
        with self._lock:
            self._url = url
            self._verify = str(self.settings.ca_cert) if local_ca else True
        return self._wait_answering(self.timings.startup_timeout, launched=False)

    def _connect_remote(self, url: str) -> Health:
        authority, identifier, verify = self._expected_identity()
        # Trust first: an origin nobody trusts is sent nothing at all, not even the metadata request.
        self._set_status(LinkState.CONNECTING, detail="checking that you trust its origin", url=url)
        self.trusted_because = require_trusted(
            url, settings=self.settings, audience=identifier, authority=authority, prompt=self.trust_prompt
        )
        if self.bus is not None:
            self.bus.publish(
                Notice(message=f"{url}: origin trusted ({self.trusted_because})", source="server")
            )
        self._set_status(LinkState.CONNECTING, detail="checking its protected-resource metadata", url=url)
        self.metadata = fetch_resource_metadata(
            url,
            authority=authority,
            identifier=identifier,
            verify=verify,
            timeout=self.timings.probe_timeout + 3,
        )
        with self._lock:
            self._url = url
            self._verify = verify
        return Health(LinkState.READY, "")

    def _expected_identity(self) -> tuple[str, str, bool | str]:
        """The authority and API identifier this console signs in for, and what to trust for the metadata GET."""

        try:
            endpoints = resolve_endpoints(self.settings)
        except UserError as exc:
            raise UserError(
                f"Cannot check {self.connect_url} before connecting: this console does not know which authority "
                f"and API to expect ({exc.message})",
                hint=exc.hint
                or "Start the local stack, or set OBO_CONSOLE_AUTHORITY and OBO_CONSOLE_API_CLIENT_ID.",
            ) from exc
        identifier = api_identifier(endpoints.api_client_id, endpoints.api_scope)
        if not identifier:
            raise UserError(
                "Cannot check the server: no API identifier is configured (OBO_CONSOLE_API_CLIENT_ID)."
            )
        verify: bool | str = True
        host = urlsplit(self.connect_url or "").hostname
        if endpoints.mode == "local" and endpoints.ca_cert and is_loopback_host(host):
            verify = str(endpoints.ca_cert)  # the local CA only for loopback servers, and never in Azure mode
        if endpoints.mode == "local" and self.settings.mode == "local":
            state = self._stack.read_state()
            with self._lock:
                self._state = state
        return endpoints.authority.rstrip("/"), identifier, verify

    def _launch_and_wait(self) -> Health:
        with self._lock:
            pinned = self._state
        _LIVE_LINKS.add(self)
        deadline = time.monotonic() + self.timings.startup_timeout  # for the state file and /healthz together
        state = self._stack.launch(
            pinned=pinned, on_waiting=lambda detail: self._set_status(LinkState.CONNECTING, detail=detail)
        )
        self._adopt_state(state)
        return self._wait_answering(max(1.0, deadline - time.monotonic()), launched=True)

    def _wait_answering(self, timeout: float, *, launched: bool) -> Health:
        """Poll ``/healthz`` until the server answers (ready, or degraded: it names what is not ready)."""
        url = self.mcp_url
        assert url
        deadline = time.monotonic() + timeout
        while True:
            health = probe_health(url, verify=self.tls_verify, timeout=self.timings.probe_timeout)
            if health.answers:
                return health
            if launched:
                self._stack.check_alive()
            if time.monotonic() > deadline:
                if launched:
                    raise self._stack.startup_error(
                        f"{health_url(url)} was not ready within {timeout:.0f} s ({health.detail})"
                    )
                raise UserError(
                    f"The MCP server at {url} is not ready: {health.detail}.",
                    hint="Is the server running? Start it with `obo-console server`, or check --connect / "
                    "OBO_CONSOLE_MCP_URL.",
                )
            if self._stop.wait(0.1):
                raise UserError("Stopped while waiting for the MCP server.")

    # -- what the watcher asks (link_watch.Watched) -------------------------------------------------------------

    def probe(self) -> Health | None:
        url = self.mcp_url
        if url is None:
            return None
        return probe_health(url, verify=self.tls_verify, timeout=self.timings.probe_timeout)

    def exit_detail(self) -> str | None:
        code = self._stack.exit_code()
        return f"the local stack exited with code {code}" if code is not None else None

    def try_reconnect(self) -> Health:
        if self.connect_url:
            # The origin's trust was settled at start (it cannot change: same URL). Whatever answers there now
            # must prove again, in its metadata, who it is and who it trusts before a token goes to it.
            authority, identifier, verify = self._expected_identity()
            self.metadata = fetch_resource_metadata(
                self.connect_url,
                authority=authority,
                identifier=identifier,
                verify=verify,
                timeout=self.timings.probe_timeout,
            )
            return probe_health(self.connect_url, verify=verify, timeout=self.timings.probe_timeout)
        if self.settings.mode == "local" and not self.settings.mcp_url:
            return self._reconnect_local()
        url = self.mcp_url
        assert url
        return probe_health(url, verify=self.tls_verify, timeout=self.timings.probe_timeout)

    def _reconnect_local(self) -> Health:
        if self._stack.exit_code() is not None:
            self._stack.stop()
        state = self._stack.running_stack()
        if state is None:
            if self._stack.launched_ever and not self._stack.launched:
                # The console started this stack and it died: start it again (stopped again on close).
                try:
                    return self._launch_and_wait()
                except BaseException:
                    self._stack.stop()  # a half-started stack must not linger between attempts
                    raise
            return Health(LinkState.DOWN, "no local stack is running")
        self._adopt_state(state)  # a restarted stack may listen elsewhere; the state file says where
        return probe_health(state.mcp_url or "", verify=self.tls_verify, timeout=self.timings.probe_timeout)

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
                launched=self._stack.launched,
                detail=detail,
            )
            if status == self._status:
                return
            self._status = status
            self._changed.notify_all()
            callbacks = list(self._status_callbacks.values())
        for callback in callbacks:
            callback(status)
        if self.bus is not None:
            self.bus.publish(
                ServerStatusChanged(
                    state=status.state,
                    url=status.url,
                    attempt=status.attempt,
                    next_retry_in=status.next_retry_in,
                    launched=status.launched,
                    detail=status.detail,
                )
            )
            if notify_level is not None:
                self.bus.publish(Notice(level=notify_level, message=status.describe(), source="server"))
