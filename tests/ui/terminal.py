"""A pseudo-terminal driving a real process, read through pyte as a person would read the screen."""

from __future__ import annotations

import contextlib
import fcntl
import os
import pty
import select
import signal
import struct
import termios
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import pyte

# Free ports for everything the console launches: never collide with a developer's stack or another run.
FREE_PORTS = {
    "OBO_CONSOLE_MCP_PORT": "0",
    "OBO_CONSOLE_IDENTITY_PORT": "0",
    "OBO_CONSOLE_SEARCH_PORT": "0",
    "OBO_CONSOLE_CALCULATOR_PORT": "0",
}


def console_env(home: Path, drop: Sequence[str] = ("TEXTUAL",), **extra: str) -> dict[str, str]:
    """This process's environment for a console child: none of our OBO_CONSOLE_* settings and none of ``drop``,
    its own ``OBO_CONSOLE_HOME``, free ports, and ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OBO_CONSOLE_") and k not in drop}
    env.update(OBO_CONSOLE_HOME=str(home), **FREE_PORTS, **extra)
    return env


def _children(pid: int) -> set[int]:
    found: set[int] = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.add(int(stat.parent.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


class Terminal:
    def __init__(
        self,
        argv: Sequence[str],
        env: dict[str, str],
        size: tuple[int, int] = (160, 45),
        cwd: str | None = None,
    ) -> None:
        self.columns, self.lines = size
        self.screen = pyte.Screen(self.columns, self.lines)
        self.stream = pyte.ByteStream(self.screen)
        pid, fd = pty.fork()
        if pid == 0:  # the child: become the program
            if cwd:
                os.chdir(cwd)
            os.execve(argv[0], list(argv), env)
        self.pid, self.fd = pid, fd
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", self.lines, self.columns, 0, 0))
        self.descendants: set[int] = set()
        self.exit_status: int | None = None

    def _collect_descendants(self) -> None:
        todo = [self.pid]
        while todo:
            for child in _children(todo.pop()):
                if child not in self.descendants:
                    self.descendants.add(child)
                    todo.append(child)

    def pump(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            ready, _, _ = select.select([self.fd], [], [], min(left, 0.05))
            if ready:
                try:
                    data = os.read(self.fd, 65536)
                except OSError:
                    return
                if not data:
                    return
                self.stream.feed(data)

    @property
    def text(self) -> str:
        return "\n".join(self.screen.display)

    def wait_for(self, condition: Callable[[str], bool] | str, timeout: float = 30.0) -> str:
        test = (lambda screen: condition in screen) if isinstance(condition, str) else condition
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.pump(0.1)
            self._collect_descendants()
            if test(self.text):
                return self.text
        raise AssertionError(f"timed out waiting for {condition!r}; the screen shows:\n{self.text}")

    def wait_for_output(self, markers: Sequence[bytes], timeout: float = 30.0) -> float:
        """Read the raw output (no terminal emulation, which is slow for large frames) until every marker has
        appeared; returns the monotonic time it happened. For timing first frames."""
        seen = bytearray()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.fd], [], [], 0.01)
            if ready:
                try:
                    seen += os.read(self.fd, 1 << 20)
                except OSError:
                    break
                if all(marker in seen for marker in markers):
                    return time.monotonic()
        raise AssertionError(f"timed out waiting for {markers!r}")

    def press(self, keys: bytes) -> None:
        os.write(self.fd, keys)

    def wait_exit(self, timeout: float = 30.0) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._collect_descendants()
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.exit_status = os.waitstatus_to_exitcode(status)
                return self.exit_status
            self.pump(0.05)
        raise AssertionError(f"the process did not exit; the screen shows:\n{self.text}")

    def kill(self) -> None:
        for pid in [self.pid, *self.descendants]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(self.pid, 0)
        os.close(self.fd)
