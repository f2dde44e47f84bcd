"""What the UI reads from the workspace: accounts, chat entries, the active agent, configs, a turn's outcome, and
the handle of a device-code sign-in in progress. Plain frozen data (no token), light to import."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from pydantic import SecretStr

from console.core.clock import Clock

if TYPE_CHECKING:
    from console.core.auth.accounts import SignedInAccount
    from console.core.auth.device_flow import DeviceFlow
    from console.core.auth.worker_flow import WorkerFlow

Claims = dict[str, object]  # a token's decoded claims (JSON values); never the token itself


@dataclass(frozen=True)
class AccountInfo:
    """A signed-in account as views show it (no token)."""

    username: str
    name: str
    oid: str = ""
    tenant_id: str = ""

    @property
    def login(self) -> str:
        return self.username.split("@", 1)[0]


class Role(StrEnum):
    """Who a chat entry is from."""

    USER = "user"
    ASSISTANT = "assistant"
    NOTICE = "notice"


@dataclass(frozen=True)
class ChatEntry:
    """One message of an account's conversation."""

    role: Role
    text: str
    agent: str | None = None
    ts: float = 0.0
    turn_id: str | None = None
    error: bool = False
    interrupted: bool = False  # an answer cut off when the console stopped mid-stream (from a saved session)


@dataclass(frozen=True)
class AgentInfo:
    """The active agent as the agent pane shows it."""

    key: str
    name: str
    model: str
    provider: str
    tools: tuple[str, ...] = ()
    agents_as_tools: tuple[str, ...] = ()
    handoffs: tuple[str, ...] = ()
    mcp_servers: tuple[str, ...] = ()
    description: str = ""


@dataclass(frozen=True)
class ConfigInfo:
    """One config's validation status for the configs screen and the command palette."""

    key: str
    name: str
    source: str
    valid: bool
    serving: bool
    serving_last_good: bool
    errors: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class TurnOutcome:
    output: str
    agent: str | None
    error: str | None = None
    cancelled: bool = False


class SignInHandle:
    """What a device-code and a browser sign-in in progress share: ``signed_in()`` completes once the person
    signed in and ``on_signed_in`` made that account current (on the flow's thread, never on the caller's)."""

    def __init__(self, flow: WorkerFlow, on_signed_in: Callable[[SignedInAccount], AccountInfo]) -> None:
        self._flow = flow
        self._on_signed_in = on_signed_in
        self._signed_in: Future[AccountInfo] | None = None
        self._lock = threading.Lock()

    def done(self) -> bool:
        return self._flow.done()

    def result(self, timeout: float | None = None) -> AccountInfo:
        """Block until signed in (then that account is current); raises the flow's error."""
        return self.signed_in().result(timeout)

    def signed_in(self) -> Future[AccountInfo]:
        """The account once signed in and current (the flow's error otherwise). Returns at once; starts the flow."""
        with self._lock:
            if self._signed_in is None:
                self._signed_in = Future()
                self._watch(self._signed_in)
                self._flow.future.add_done_callback(self._finish)
            return self._signed_in

    def _watch(self, signed_in: Future[AccountInfo]) -> None:
        """Hook: react to the waiter's future (made once, before the flow starts)."""

    def _finish(self, flow_done: Future[SignedInAccount]) -> None:
        target = self._signed_in
        assert target is not None
        try:
            if flow_done.cancelled():
                target.cancel()
                return
            error = flow_done.exception()
            if error is not None:
                target.set_exception(error)
                return
            target.set_result(self._on_signed_in(flow_done.result()))
        except InvalidStateError:  # the waiter cancelled ours meanwhile: nobody wants the account any more
            pass
        except Exception as exc:  # making the account current failed (e.g. the keyring): the waiter hears why
            if not target.done():
                target.set_exception(exc)

    def cancel(self) -> None:
        self._flow.cancel()


class DeviceFlowHandle(SignInHandle):
    """A device-code sign-in in progress. ``user_code`` is masked (SecretStr): reveal it only where shown."""

    def __init__(
        self, flow: DeviceFlow, on_signed_in: Callable[[SignedInAccount], AccountInfo], clock: Clock
    ) -> None:
        super().__init__(flow, on_signed_in)
        self._device = flow
        self._clock = clock

    @property
    def user_code(self) -> SecretStr:
        return self._device.prompt.user_code

    @property
    def verification_uri(self) -> str:
        return self._device.prompt.verification_uri

    @property
    def expires_at(self) -> float:
        return self._device.prompt.expires_at

    @property
    def interval(self) -> int:
        return self._device.prompt.interval

    def seconds_left(self, clock: Clock | None = None) -> int:
        now = (clock or self._clock).time()
        return max(0, int(self.expires_at - now))

    def _watch(self, signed_in: Future[AccountInfo]) -> None:
        signed_in.add_done_callback(self._stop_if_cancelled)

    def _stop_if_cancelled(self, future: Future[AccountInfo]) -> None:
        if future.cancelled():
            self._flow.cancel()  # nobody waits for this sign-in any more: stop polling

    def __repr__(self) -> str:
        return f"<DeviceFlowHandle {self.verification_uri} done={self.done()}>"
