"""A real Secret Service for tests: a private D-Bus session bus (dbus-run-session) running gnome-keyring-daemon,
its login keyring created and unlocked with a throwaway password, in a throwaway HOME.

The bus has no service directories, so nothing is D-Bus-activated behind the test's back: the only Secret Service
on it is the daemon started here. ``.ci/run`` installs gnome-keyring, dbus and libsecret-tools when missing.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

PACKAGES = "gnome-keyring dbus libsecret-tools"
SECRET_SERVICE = "org.freedesktop.secrets"
DEFAULT_COLLECTION = "/org/freedesktop/secrets/aliases/default"
READY_TIMEOUT = 30.0

_BUS_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:dir={socket_dir}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"""


class SecretService:
    """The running service: ``env`` for processes that should use it, and ``secret-tool`` against it."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env

    def tool(self, *argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["secret-tool", *argv],
            capture_output=True,
            text=True,
            env=self.env,
            timeout=30,
            stdin=subprocess.DEVNULL,
        )

    def usernames(self, service: str) -> list[str]:
        """The ``username`` attribute of every item stored for ``service`` (as keyring stores them), sorted."""
        found = self.tool("search", "--all", "service", service)
        assert found.returncode in (0, 1), found.stderr  # 1: nothing found
        prefix = "attribute.username = "  # secret-tool prints the attributes on stderr, the rest on stdout
        lines = (found.stdout + found.stderr).splitlines()
        return sorted(line.removeprefix(prefix) for line in lines if line.startswith(prefix))

    def lookup(self, service: str, username: str) -> str | None:
        found = self.tool("lookup", "service", service, "username", username)
        return found.stdout if found.returncode == 0 else None

    def lock(self) -> None:
        """Lock the default collection, as the desktop does on screen lock (Secret Service Lock: no prompt)."""
        locked = subprocess.run(
            [
                "dbus-send",
                "--session",
                "--print-reply",
                f"--dest={SECRET_SERVICE}",
                "/org/freedesktop/secrets",
                "org.freedesktop.Secret.Service.Lock",
                f"array:objpath:{DEFAULT_COLLECTION}",
            ],
            capture_output=True,
            text=True,
            env=self.env,
            timeout=30,
        )
        assert locked.returncode == 0, locked.stderr


def _require_tools() -> None:
    missing = [
        t for t in ("dbus-run-session", "gnome-keyring-daemon", "secret-tool") if shutil.which(t) is None
    ]
    if missing:
        raise AssertionError(
            f"{', '.join(missing)} not installed: apt-get install {PACKAGES} (.ci/run does this)"
        )


def _has_owner(env: dict[str, str]) -> bool:
    reply = subprocess.run(
        [
            "dbus-send",
            "--session",
            "--print-reply",
            "--dest=org.freedesktop.DBus",
            "/org/freedesktop/DBus",
            "org.freedesktop.DBus.NameHasOwner",
            f"string:{SECRET_SERVICE}",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=10,
    )
    return "boolean true" in reply.stdout


@contextmanager
def running_secret_service(root: Path, password: str = "throwaway-test-password") -> Iterator[SecretService]:
    _require_tools()
    home, runtime, sockets = root / "home", root / "runtime", root / "bus"
    for folder in (home, runtime, sockets):
        folder.mkdir(mode=0o700, parents=True)
    config = root / "session-bus.conf"
    config.write_text(_BUS_CONFIG.format(socket_dir=sockets))
    address_file = root / "bus-address"
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DBUS_", "GNOME_KEYRING", "DISPLAY", "WAYLAND"))
    }
    env |= {
        "HOME": str(home),
        "XDG_RUNTIME_DIR": str(runtime),
        "XDG_DATA_HOME": str(home / ".local" / "share"),
        "XDG_CONFIG_HOME": str(home / ".config"),
    }
    # dbus-run-session runs the bus for as long as its child runs; the child writes the bus address, then becomes
    # the keyring daemon, which reads the password from stdin and creates (or unlocks) the login keyring with it.
    script = (
        f'printf %s "$DBUS_SESSION_BUS_ADDRESS" > "{address_file}"; '
        "exec gnome-keyring-daemon --foreground --unlock --components=secrets"
    )
    proc = subprocess.Popen(
        ["dbus-run-session", f"--config-file={config}", "--", "sh", "-c", script],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,  # its own process group: stopped as one below
    )
    try:
        assert proc.stdin is not None
        proc.stdin.write(password)
        proc.stdin.close()
        deadline = time.monotonic() + READY_TIMEOUT
        while not (address_file.exists() and address_file.read_text()):
            assert proc.poll() is None and time.monotonic() < deadline, "the session bus did not start"
            time.sleep(0.05)
        env["DBUS_SESSION_BUS_ADDRESS"] = address_file.read_text()
        while not _has_owner(env):  # the daemon owns org.freedesktop.secrets once it serves
            assert proc.poll() is None and time.monotonic() < deadline, "gnome-keyring-daemon did not start"
            time.sleep(0.05)
        yield SecretService(env)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)  # the bus, the shell and the daemon: all started here
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()
