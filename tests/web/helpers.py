"""`obo-console web` as a person starts it (a real process on a free port, its own data directory), and what a
browser tab shows, read from the bytes its terminal (xterm.js) draws: the page's websocket frames are copied as
they arrive and replayed into pyte, a terminal emulator, so tests read the screen as text."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pyte

from tests.ui.terminal import _children, alive, console_env

OBO_CONSOLE = str(Path(sys.executable).with_name("obo-console"))
URL_LINE = re.compile(r"^\s+(http://\S+/\?token=(\S+))$")

# Copies every websocket frame the page receives (and every message it sends) before textual.js sees it.
TEE_WEBSOCKETS = """
(() => {
  const Native = window.WebSocket;
  const seen = {frames: [], sent: [], sockets: []};
  window.__obo = seen;
  function Tee(url, protocols) {
    const ws = protocols === undefined ? new Native(url) : new Native(url, protocols);
    const record = {url: String(url), opened: false, closed: null};
    seen.sockets.push(record);
    ws.addEventListener('open', () => { record.opened = true; });
    ws.addEventListener('close', (e) => { record.closed = e.code; });
    ws.addEventListener('message', (e) => {
      if (typeof e.data === 'string') { seen.frames.push('T' + e.data); return; }
      const bytes = new Uint8Array(e.data);
      let text = '';
      for (let i = 0; i < bytes.length; i += 0x8000) {
        text += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
      }
      seen.frames.push('B' + btoa(text));
    });
    const send = ws.send.bind(ws);
    ws.send = (data) => { seen.sent.push(String(data)); send(data); };
    return ws;
  }
  Tee.prototype = Native.prototype;
  Object.assign(Tee, {CONNECTING: 0, OPEN: 1, CLOSING: 2, CLOSED: 3});
  window.WebSocket = Tee;
})();
"""


def web_env(home: Path) -> dict[str, str]:
    return console_env(home, OBO_CONSOLE_KEYRING_BACKEND="file", PYTHONUNBUFFERED="1")


class WebConsole:
    """`obo-console web --port 0 [args]`: started, its URL and token read from its output, stopped with SIGTERM."""

    def __init__(
        self, home: Path, *args: str, timeout: float = 120.0, env: dict[str, str] | None = None
    ) -> None:
        """``env``: more environment for the command (and so its tabs' consoles), over ``web_env``."""
        self.home = home
        self.proc = subprocess.Popen(
            [OBO_CONSOLE, "web", "--port", "0", *args],
            env={**web_env(home), **(env or {})},
            cwd=str(home),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        self._url_seen = threading.Event()
        self.url = self.token = ""
        self.descendants: set[int] = set()
        self._readers = [
            threading.Thread(target=self._read, args=(self.proc.stdout, self.stdout), daemon=True),
            threading.Thread(target=self._read, args=(self.proc.stderr, self.stderr), daemon=True),
        ]
        for reader in self._readers:
            reader.start()
        if not self._url_seen.wait(timeout):
            self.stop()
            raise AssertionError(f"no URL printed; stdout {self.stdout}, stderr {self.stderr}")

    def _read(self, stream: Any, lines: list[str]) -> None:
        for line in stream:
            lines.append(line.rstrip("\n"))
            match = URL_LINE.match(line.rstrip("\n"))
            if match and lines is self.stdout:
                self.url, self.token = match.group(1), match.group(2)
                self._url_seen.set()
        self._url_seen.set()  # the process ended

    @property
    def base(self) -> str:
        parts = urlsplit(self.url)
        return f"{parts.scheme}://{parts.netloc}"

    @property
    def port(self) -> int:
        return int(urlsplit(self.url).port or 0)

    def collect_descendants(self) -> set[int]:
        todo = [self.proc.pid]
        while todo:
            for child in _children(todo.pop()):
                if child not in self.descendants:
                    self.descendants.add(child)
                    todo.append(child)
        return self.descendants

    def stop(self, timeout: float = 60.0) -> int:
        """SIGTERM, as Ctrl+C would; returns the exit code once everything it started is gone (else raises)."""
        self.collect_descendants()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise
        deadline = time.monotonic() + 30
        while any(alive(pid) for pid in self.descendants) and time.monotonic() < deadline:
            time.sleep(0.1)
        left = [pid for pid in self.descendants if alive(pid)]
        if left:
            self.kill()
            raise AssertionError(f"still running after `obo-console web` stopped: {left}")
        for reader in self._readers:
            reader.join(5)
        return code

    def kill(self) -> None:
        for pid in [*self.collect_descendants(), self.proc.pid]:
            if alive(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        self.proc.wait(10)


class PageScreen:
    """The console in one browser tab, read as text: the page's terminal bytes replayed into pyte."""

    def __init__(self, driver: Any) -> None:
        self.driver = driver
        self.screen = pyte.Screen(80, 24)
        self.stream = pyte.ByteStream(self.screen)
        self._sized = False

    def pump(self) -> None:
        import base64

        seen = self.driver.execute_script(
            "const s = window.__obo; if (!s) return null;"
            "return {frames: s.frames.splice(0), sent: s.sent.splice(0), sockets: s.sockets};"
        )
        if not seen:
            return
        for socket in seen["sockets"]:
            size = re.search(r"width=(\d+)&height=(\d+)", socket["url"])
            if size and not self._sized:
                self.screen.resize(int(size.group(2)), int(size.group(1)))
                self._sized = True
        for message in seen["sent"]:
            match = re.match(r'\["resize",\s*\{"width":\s*(\d+),\s*"height":\s*(\d+)', message)
            if match:
                self.screen.resize(int(match.group(2)), int(match.group(1)))
        for frame in seen["frames"]:
            if frame.startswith("B"):
                self.stream.feed(base64.b64decode(frame[1:]))

    @property
    def text(self) -> str:
        return "\n".join(self.screen.display)

    def sockets(self) -> list[dict[str, Any]]:
        return list(self.driver.execute_script("return window.__obo ? window.__obo.sockets : [];"))

    def wait_for(self, condition: Callable[[str], bool] | str, timeout: float = 60.0) -> str:
        test = (lambda screen: condition in screen) if isinstance(condition, str) else condition
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.pump()
            if test(self.text):
                return self.text
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {condition!r}; the page shows:\n{self.text}")
