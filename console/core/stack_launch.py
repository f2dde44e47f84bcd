"""The local stack as the console finds or starts it: its state file, whether a running one answers, and launching
``obo-console server`` in its own process group with its output captured line by line.

A relaunched stack comes back on the ports it had, so its issuer, URLs and signed-in tokens stay valid. Whoever
launched a stack stops it (``StackLauncher.stop``); nothing here decides when.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO
from urllib.parse import urlsplit

import requests

from console.core.clock import Clock
from console.core.link_state import LinkTimings, LogLine
from console.core.mcp_urls import validate_mcp_url
from console.core.server_checks import health_url, http_get
from console.core.settings import Settings
from mcp_server.errors import UserError
from mcp_server.paths import data_dir
from mcp_server.processes import pid_alive
from mcp_server.stack_state import StackState, StateFileError, read_state

LogCallback = Callable[[LogLine], None]


class ServerLog:
    """The last lines the launched server printed, and who wants each new one (called from reader threads)."""

    def __init__(self, capacity: int = 2000) -> None:
        self._lines: deque[LogLine] = deque(maxlen=capacity)
        self._callbacks: dict[str, LogCallback] = {}
        self._lock = threading.Lock()

    def append(self, line: LogLine) -> None:
        with self._lock:
            self._lines.append(line)
            callbacks = list(self._callbacks.values())
        for callback in callbacks:
            callback(line)

    def tail(self, n: int | None = None) -> list[LogLine]:
        with self._lock:
            lines = list(self._lines)
        return lines if n is None else lines[-n:]

    def subscribe(self, callback: LogCallback, *, replay: bool = True) -> Callable[[], None]:
        """Call ``callback(line)`` for each new line (after replaying the buffer); returns the unsubscribe."""
        token = uuid.uuid4().hex
        with self._lock:
            self._callbacks[token] = callback
            backlog = list(self._lines) if replay else []
        for line in backlog:
            callback(line)

        def unsubscribe() -> None:
            with self._lock:
                self._callbacks.pop(token, None)

        return unsubscribe


class ServerProcess:
    """``obo-console server`` in its own process group, its output captured line by line."""

    def __init__(
        self,
        command: Sequence[str],
        env: dict[str, str],
        on_line: LogCallback,
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
            threading.Thread(
                target=self._pump, args=(self.proc.stdout, "stdout"), daemon=True, name="server-out"
            ),
            threading.Thread(
                target=self._pump, args=(self.proc.stderr, "stderr"), daemon=True, name="server-err"
            ),
        ]
        for reader in self._readers:
            reader.start()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def exit_code(self) -> int | None:
        return self.proc.poll()

    def _pump(self, stream: IO[str], name: str) -> None:
        try:
            for raw in stream:
                self._on_line(LogLine(ts=self._now(), stream=name, text=raw.rstrip("\r\n")))
        except (ValueError, OSError):  # the pipe closed under the reader: the process is gone
            return

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
            if stream is not None:
                with contextlib.suppress(
                    OSError
                ):  # a pipe that failed to flush: nothing more to read from it
                    stream.close()
        return self.proc.returncode

    def _signal(self, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):  # the group is already gone
            os.killpg(self.proc.pid, sig)


class StackLauncher:
    """Finds a running local stack, or launches one and waits for its state file. Stops only what it launched."""

    def __init__(
        self,
        settings: Settings,
        *,
        timings: LinkTimings,
        clock: Clock,
        log: ServerLog,
        stop: threading.Event,
        server_command: Sequence[str] | None = None,
    ) -> None:
        """``stop``: set when whoever waits for a launch gives up (the link closes)."""
        self.settings = settings
        self.timings = timings
        self.clock = clock
        self.log = log
        self._stop = stop
        self.server_command = list(server_command) if server_command else None
        self._lock = threading.Lock()
        self._process: ServerProcess | None = None
        self.launched_ever = False

    # -- what is running ----------------------------------------------------------------------------------------

    @property
    def launched(self) -> bool:
        """True while a process this launcher started is held (and will be stopped by ``stop``)."""
        with self._lock:
            return self._process is not None

    @property
    def pid(self) -> int | None:
        with self._lock:
            return self._process.pid if self._process else None

    def exit_code(self) -> int | None:
        """The launched process's exit code once it exited (None while it runs, or when none was launched)."""
        with self._lock:
            process = self._process
        return process.exit_code() if process is not None else None

    def state_path(self) -> Path:
        return self.settings.effective_state_file()

    def read_state(self) -> StackState | None:
        try:
            return read_state(self.state_path())
        except StateFileError:
            return None  # half-written files are impossible (atomic); an invalid one is treated as absent

    def running_stack(self) -> StackState | None:
        """The state of a live local stack, or None (no file, dead pid, or no MCP URL yet)."""
        state = self.read_state()
        if state is None or not state.mcp_url:
            return None
        if state.pid is not None and not pid_alive(state.pid):
            return None  # a stack that died without cleaning up
        return state

    def answers(self, state: StackState) -> bool:
        """Whether anything answers HTTP at the stack's address (a state file whose pid was reused by another
        process, or whose stack hangs without listening, does not count as a running stack)."""
        if not state.mcp_url:
            return False
        try:
            url = validate_mcp_url(state.mcp_url)
            verify = state.ca_cert if (urlsplit(url).scheme == "https" and state.ca_cert) else True
            http_get(health_url(url), verify=verify, timeout=self.timings.probe_timeout)
        except (requests.RequestException, UserError):
            return False
        return True

    # -- launching ----------------------------------------------------------------------------------------------

    def launch(self, *, pinned: StackState | None, on_waiting: Callable[[str], None]) -> StackState:
        """Start the stack (on ``pinned``'s ports, when it ran before) and wait for its state file. ``on_waiting``
        hears what is being waited for. UserError, with its last log lines, when it does not start."""
        stale = (
            self.read_state()
        )  # a stale state file (its stack died) must not be mistaken for the new stack's
        if stale is not None and not pid_alive(stale.pid):
            self.state_path().unlink(missing_ok=True)
        command = self._command()
        self.log.append(
            LogLine(self.clock.time(), "console", f"starting the local stack: {' '.join(command)}")
        )
        process = ServerProcess(command, self._child_env(pinned), self.log.append, self.clock.time)
        with self._lock:
            self._process = process
            self.launched_ever = True
        on_waiting(f"started the local stack (pid {process.pid}); waiting")
        deadline = time.monotonic() + self.timings.startup_timeout
        while True:
            state = self.read_state()
            if state is not None and state.mcp_url and _is_from(state, process):
                return state
            self.check_alive()
            if time.monotonic() > deadline:
                raise self.startup_error(
                    f"it wrote no state file within {self.timings.startup_timeout:.0f} s"
                )
            if self._stop.wait(0.05):
                raise UserError("Stopped while waiting for the local stack to start.")

    def check_alive(self) -> None:
        """UserError (with its log) if the launched stack exited."""
        code = self.exit_code()
        if code is not None:
            raise self.startup_error(f"it exited with code {code}")

    def startup_error(self, what: str) -> UserError:
        lines = "\n".join(f"    {line.text}" for line in self.log.tail(15) if line.stream != "console")
        return UserError(
            f"The local stack did not start: {what}."
            + (f"\n  Its last log lines:\n{lines}" if lines else ""),
            hint="Run `obo-console server` yourself to see the full log; another process may hold its ports "
            "(OBO_CONSOLE_MCP_PORT, OBO_CONSOLE_IDENTITY_PORT, ...).",
        )

    def stop(self) -> int | None:
        """Stop the launched stack (if any); returns its exit code."""
        with self._lock:
            process, self._process = self._process, None
        if process is None:
            return None
        self.log.append(
            LogLine(self.clock.time(), "console", f"stopping the local stack (pid {process.pid})")
        )
        return process.stop(self.timings.stop_grace)

    def _command(self) -> list[str]:
        if self.server_command:
            return list(self.server_command)
        return [sys.executable, "-m", "console.cli", "--state-file", str(self.state_path()), "server"]

    def _child_env(self, pinned: StackState | None) -> dict[str, str]:
        env = dict(os.environ)
        s = self.settings
        env.update(
            {
                "PYTHONUNBUFFERED": "1",
                "OBO_CONSOLE_PARENT_PID": str(os.getpid()),  # the server stops if the console dies hard
                "OBO_CONSOLE_HOME": str(
                    data_dir().resolve()
                ),  # the console's --home, given to the child alone
                "OBO_CONSOLE_MODE": s.mode,
                "OBO_CONSOLE_STATE_FILE": str(self.state_path()),
                "OBO_CONSOLE_MCP_HOST": s.mcp_host,
                "OBO_CONSOLE_MCP_PORT": str(s.mcp_port),
                "OBO_CONSOLE_IDENTITY_PORT": str(s.identity_port),
                "OBO_CONSOLE_SEARCH_PORT": str(s.search_port),
                "OBO_CONSOLE_CALCULATOR_PORT": str(s.calculator_port),
            }
        )
        if pinned is not None and self.launched_ever:
            env.update(_pinned_ports(pinned))
        return env


def _pinned_ports(state: StackState) -> dict[str, str]:
    """The ports a stack had, as the environment of its relaunch."""
    pinned: dict[str, str] = {}
    for env_name, url in (
        ("OBO_CONSOLE_MCP_PORT", state.mcp_url),
        ("OBO_CONSOLE_IDENTITY_PORT", state.authority),
        ("OBO_CONSOLE_SEARCH_PORT", state.search_endpoint),
        ("OBO_CONSOLE_CALCULATOR_PORT", state.calculator_url),
    ):
        port = urlsplit(str(url)).port if url else None
        if port:
            pinned[env_name] = str(port)
    return pinned


def _is_from(state: StackState, process: ServerProcess) -> bool:
    if state.pid is not None:
        return state.pid == process.pid
    return True  # no pid in the file: a stale one was removed before the launch, so this one is new
