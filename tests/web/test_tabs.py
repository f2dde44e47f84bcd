"""Each tab of `obo-console web` has its own sign-in and its own conversation: the real command and its real tab
consoles, driven over textual-serve's websocket (as the page's script does: "stdin" and "resize" messages, the
terminal's bytes back, read as text with pyte), with the token cache of the terminal console in a real OS keyring
(gnome-keyring's Secret Service on a private D-Bus bus, ``tests/auth/secret_service.py``).

The terminal signs in as carol (into the keyring). Tab 1 starts signed out all the same, signs in as alice and asks
a question; tab 2 starts signed out too, signs in as bob; tab 1 is still alice. A third tab signing in as alice
starts a new conversation: tab 1's is not resumed. Nothing of the tabs reached the keyring, the current-account
pointer or the saved conversations: the terminal still has only carol, as before. The web command's own environment
asks for the keyring and saved conversations: its tabs keep theirs all the same.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import aiohttp
import pyte
import pytest

from console.core.auth.manager import KEYRING_SERVICE
from tests.auth.secret_service import SecretService, running_secret_service
from tests.web.helpers import OBO_CONSOLE, WebConsole, web_env

SECRET_SERVICE_BACKEND = "keyring.backends.SecretService.Keyring"
WIDTH, HEIGHT = 140, 45
START_TIMEOUT = 180.0  # a tab's console imports the agent runtime on a CPU shared with other test runs
ALICE, BOB, CAROL = "<alice@contoso.example>", "<bob@contoso.example>", "<carol@contoso.example>"


class Tab:
    """One browser tab's websocket: what its console draws, replayed into a pyte screen as it arrives."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.screen = pyte.Screen(WIDTH, HEIGHT)
        self.stream = pyte.ByteStream(self.screen)
        self.changed = asyncio.Event()
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for message in self.ws:
            if message.type == aiohttp.WSMsgType.BINARY:
                self.stream.feed(message.data)
                self.changed.set()

    @property
    def text(self) -> str:
        return "\n".join(self.screen.display)

    async def wait_for(self, condition: Callable[[str], bool], timeout: float = 120.0) -> str:
        """Until the screen meets ``condition`` (checked after each frame); the screen in the assertion if not."""

        async def frames() -> None:
            while not condition(self.text):
                self.changed.clear()
                await self.changed.wait()

        try:
            await asyncio.wait_for(frames(), timeout)
        except TimeoutError:
            raise AssertionError(f"timed out; the tab shows:\n{self.text}") from None
        return self.text

    async def keys(self, data: str) -> None:
        await self.ws.send_str(json.dumps(["stdin", data]))

    async def repainted(self, condition: Callable[[str], bool]) -> str:
        """The whole screen drawn afresh (a resize, as when the window changes), once it meets ``condition``."""
        self.screen.reset()
        await self.ws.send_str(json.dumps(["resize", {"width": WIDTH, "height": HEIGHT - 1}]))
        self.screen.resize(HEIGHT - 1, WIDTH)
        return await self.wait_for(condition)

    async def close(self) -> None:
        await self.ws.close()
        await self.reader


async def _open(http: aiohttp.ClientSession, web: WebConsole) -> Tab:
    url = f"ws://127.0.0.1:{web.port}/ws?token={web.token}&width={WIDTH}&height={HEIGHT}"
    return Tab(await http.ws_connect(url))


def _signed_out(screen: str) -> bool:
    return "Waiting for you to approve" in screen


@pytest.fixture
def secret_service(tmp_path: Path) -> Iterator[SecretService]:
    with running_secret_service(tmp_path / "secret-service") as service:
        yield service


@pytest.fixture
def keyring_env(secret_service: SecretService) -> dict[str, str]:
    """The terminal's and the web command's environment: the Secret Service is the keyring."""
    names = ("HOME", "XDG_RUNTIME_DIR", "XDG_DATA_HOME", "XDG_CONFIG_HOME", "DBUS_SESSION_BUS_ADDRESS")
    return {name: secret_service.env[name] for name in names} | {
        "OBO_CONSOLE_KEYRING_BACKEND": SECRET_SERVICE_BACKEND
    }


@pytest.fixture
def web(isolated_home: Path, keyring_env: dict[str, str]) -> Iterator[WebConsole]:
    # The person's environment asks for the terminal's behaviour: the web command's tabs keep theirs all the same.
    shared = {"OBO_CONSOLE_TOKEN_CACHE": "keyring", "OBO_CONSOLE_CONVERSATIONS": "saved"}
    console = WebConsole(isolated_home, env=keyring_env | shared)
    try:
        yield console
    finally:
        if console.proc.poll() is None:
            console.kill()


def _terminal(home: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """The terminal's `obo-console` (the default token cache: the keyring) on the same data dir and stack."""
    return subprocess.run(
        [OBO_CONSOLE, *args],
        env={**web_env(home), **env},
        cwd=home,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _keyring_entries(service: SecretService) -> dict[str, str | None]:
    return {name: service.lookup(KEYRING_SERVICE, name) for name in service.usernames(KEYRING_SERVICE)}


async def _tabs(web: WebConsole) -> None:
    async with aiohttp.ClientSession() as http:
        tab1 = await _open(http, web)
        screen = await tab1.wait_for(_signed_out, START_TIMEOUT)
        assert CAROL not in screen  # the terminal's account is not the tab's
        await tab1.keys("1")  # the demo user alice completes the sign-in page
        await tab1.wait_for(lambda s: ALICE in s and not _signed_out(s))
        await tab1.keys("show my documents")
        await tab1.wait_for(lambda s: "show my documents" in s)
        await tab1.keys("\r")
        await tab1.wait_for(lambda s: "Found " in s)

        tab2 = await _open(http, web)
        screen = await tab2.wait_for(_signed_out, START_TIMEOUT)
        assert ALICE not in screen and CAROL not in screen  # a new tab starts signed out
        await tab2.keys("2")
        await tab2.wait_for(lambda s: BOB in s and not _signed_out(s))

        screen = await tab1.repainted(lambda s: "Found " in s)
        assert ALICE in screen and BOB not in screen  # tab 1 is still alice
        await tab2.close()

        tab3 = await _open(http, web)
        await tab3.wait_for(_signed_out, START_TIMEOUT)
        await tab3.keys("1")
        await tab3.wait_for(lambda s: ALICE in s and not _signed_out(s))
        screen = await tab3.repainted(lambda s: ALICE in s)
        assert (
            "show my documents" not in screen and "Found " not in screen
        )  # tab 1's conversation stays there
        await tab3.close()
        await tab1.close()


def test_each_tab_signs_in_and_converses_on_its_own_and_leaves_the_keyring_alone(
    web: WebConsole, secret_service: SecretService, keyring_env: dict[str, str], isolated_home: Path
) -> None:
    login = _terminal(isolated_home, keyring_env, "login", "--as", "carol")
    assert login.returncode == 0, login.stderr
    stored = _keyring_entries(secret_service)
    assert stored and "manifest" in stored
    pointer = (isolated_home / "current-account.json").read_text()

    asyncio.run(_tabs(web))

    assert _keyring_entries(secret_service) == stored  # no tab wrote to the keyring
    assert (isolated_home / "current-account.json").read_text() == pointer
    assert sorted(p.name for p in (isolated_home / "sessions").glob("*")) == []  # no conversation was saved
    whoami = _terminal(isolated_home, keyring_env, "whoami", "--json")
    assert whoami.returncode == 0, whoami.stderr
    document = json.loads(whoami.stdout)
    assert (document["account"]["username"], document["accounts"]) == (CAROL[1:-1], [CAROL[1:-1]])
    assert document["keyring"] == SECRET_SERVICE_BACKEND
    assert web.stop() == 0
