"""Hostile requests to `obo-console web`'s server (textual-serve behind ``console.core.web_guard``), over real
loopback sockets. The served command is a stand-in that only says it is a Textual app: these tests are about who
gets in, not the console (tests/web drives the real console in Chromium).

Token semantics pinned here (docs/web.md): one token per run, case-sensitive, reusable until the command stops
(each use answers with a redirect that drops it from the address and sets the session cookie); a new run refuses
the old token and the old cookie.
"""

from __future__ import annotations

import asyncio
import os
import shlex
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from console.commands import web as web_command
from console.core.web_guard import AccessGuard
from console.core.web_serve import GuardedServer, bind, serve
from tests.ui.terminal import _children

STAND_IN = "exec " + shlex.join([sys.executable, "-c", "print('__GANGLION__', flush=True)"])
ROUTES = {"index": "/", "websocket": "/ws", "download": "/download/{key}", "static": "/static"}


class Site:
    """A guarded server on 127.0.0.1 (a free port), in its own thread and event loop."""

    def __init__(self, *, loopback_only: bool = True, token: str | None = None) -> None:
        self.sock = bind("127.0.0.1", 0)
        self.guard = AccessGuard(loopback_only=loopback_only, token=token)
        self.guard.port = self.port = self.sock.getsockname()[1]
        self.server = GuardedServer(STAND_IN, self.guard, title="OBO Console")
        self.token = self.guard.token.get_secret_value()
        self.base = f"http://127.0.0.1:{self.port}"
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        assert self._ready.wait(30), "the server did not start"

    def _run(self) -> None:
        async def main() -> None:
            self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
            await serve(self.server, self.sock, self._ready.set, self._stop)

        asyncio.run(main())

    def close(self) -> None:
        if self._thread.is_alive() and self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)
        self.sock.close()
        assert not self._thread.is_alive()

    def cookie(self) -> dict[str, str]:
        """The session cookie, as a browser gets it from the token's first use."""
        response = requests.get(f"{self.base}/?token={self.token}", allow_redirects=False, timeout=10)
        assert response.status_code == 302
        return {self.guard.cookie_name: response.cookies[self.guard.cookie_name]}


@pytest.fixture
def site() -> Iterator[Site]:
    running = Site()
    try:
        yield running
    finally:
        running.close()


def raw(site: Site, request: str) -> tuple[int, str]:
    """Send ``request`` as is (paths unnormalised, headers as given); the status code and the body."""
    with socket.create_connection(("127.0.0.1", site.port), timeout=10) as conn:
        conn.sendall(request.encode())
        data = b""
        while b"\r\n\r\n" not in data and (chunk := conn.recv(65536)):
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        status = int(head.split()[1])
        length = next(
            (
                int(line.split(b":", 1)[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            ),
            0,
        )
        while status != 101 and len(body) < length and (chunk := conn.recv(65536)):
            body += chunk
    return status, body.decode("utf-8", "replace")


def get(
    site: Site, path: str, *, host: str | None = None, cookie: dict[str, str] | None = None, **headers: str
) -> tuple[int, str]:
    lines = [f"GET {path} HTTP/1.1", f"Host: {host if host is not None else f'127.0.0.1:{site.port}'}"]
    if cookie:
        lines.append("Cookie: " + "; ".join(f"{k}={v}" for k, v in cookie.items()))
    lines += [f"{name.replace('_', '-')}: {value}" for name, value in headers.items()]
    return raw(site, "\r\n".join([*lines, "Connection: close", "", ""]))


def upgrade(
    site: Site, path: str = "/ws", *, cookie: dict[str, str] | None = None, origin: str | None = None
) -> tuple[int, str]:
    headers = {
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Version": "13",
    }
    if origin:
        headers["Origin"] = origin
    lines = [
        f"GET {path} HTTP/1.1",
        f"Host: 127.0.0.1:{site.port}",
        *(f"{k}: {v}" for k, v in headers.items()),
    ]
    if cookie:
        lines.append("Cookie: " + "; ".join(f"{k}={v}" for k, v in cookie.items()))
    return raw(site, "\r\n".join([*lines, "", ""]))


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return ""


def title(body: str) -> str:
    return body.split("<h1>", 1)[1].split("</h1>", 1)[0] if "<h1>" in body else body[:80]


# -- no token, wrong token ----------------------------------------------------------------------------------------


def test_the_app_serves_exactly_the_reviewed_routes_behind_the_guard(site: Site) -> None:
    app = asyncio.run(site.server.make_app())
    found = {resource.name: resource.canonical for resource in app.router.resources()}
    assert found == ROUTES  # a route added here must be reviewed (the guard covers it anyway)
    assert app.middlewares[0] == site.guard.middleware


def test_the_static_folder_lists_nothing_even_with_the_cookie(site: Site) -> None:
    status, body = get(site, "/static/", cookie=site.cookie())
    assert status in (403, 404) and "textual.js" not in body  # textual-serve's own app would list the folder
    status, body = get(site, "/static/js/textual.js", cookie=site.cookie())
    assert status == 200 and "textual" in body.lower()


@pytest.mark.parametrize(
    "path", ["/", "/ws", "/download/abc", "/static/js/textual.js", "/static/", "/nowhere"]
)
def test_every_route_refuses_a_request_without_the_token(site: Site, path: str) -> None:
    status, body = get(site, path)
    assert (status, title(body)) == (401, "401 — Access token needed")
    assert "ends in ?token=" in body


def test_the_websocket_refuses_an_upgrade_without_the_token_and_starts_no_console(site: Site) -> None:
    status, body = upgrade(site)
    assert (status, title(body)) == (401, "401 — Access token needed")
    status, body = upgrade(site, "/ws?token=nope")
    assert (status, title(body)) == (403, "403 — Wrong access token")
    site.close()  # once the server has stopped, nothing it could have started is left to appear
    assert [pid for pid in _children(os.getpid()) if "__GANGLION__" in _cmdline(pid)] == []


@pytest.mark.parametrize(
    "given",
    [
        "wrong",
        "",
        "SWAPCASE",
        "UPPER",
        "LOWER",
        "PREFIX",
        "SUFFIX",
        "TRUNCATED",
    ],
)
def test_a_wrong_token_is_refused_even_in_another_case_or_nearly_right(site: Site, given: str) -> None:
    token = site.token
    variants = {
        "SWAPCASE": token.swapcase(),
        "UPPER": token.upper(),
        "LOWER": token.lower(),
        "PREFIX": "x" + token,
        "SUFFIX": token + "x",
        "TRUNCATED": token[:-1],
    }
    candidate = variants.get(given, given)
    assert candidate != token
    response = requests.get(f"{site.base}/?token={candidate}", allow_redirects=False, timeout=10)
    assert (response.status_code, title(response.text)) == (403, "403 — Wrong access token")
    assert not response.cookies


def test_a_wrong_token_beside_a_valid_cookie_is_still_refused(site: Site) -> None:
    status, body = get(site, "/?token=wrong", cookie=site.cookie())
    assert (status, title(body)) == (403, "403 — Wrong access token")


def test_the_first_of_two_token_parameters_decides(site: Site) -> None:
    response = requests.get(f"{site.base}/?token=wrong&token={site.token}", allow_redirects=False, timeout=10)
    assert response.status_code == 403


# -- the token's use and reuse ------------------------------------------------------------------------------------


def test_the_token_is_exchanged_for_a_strict_http_only_cookie_and_dropped_from_the_address(
    site: Site,
) -> None:
    response = requests.get(f"{site.base}/?fontsize=20&token={site.token}", allow_redirects=False, timeout=10)
    assert response.status_code == 302
    assert response.headers["Location"] == "/?fontsize=20"
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith(f"obo_console_web_{site.port}=") and site.token not in cookie
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
    assert response.headers["Referrer-Policy"] == "no-referrer"
    page = requests.get(f"{site.base}/?fontsize=20", cookies=response.cookies, timeout=10)
    assert page.status_code == 200 and 'data-session-websocket-url="ws://127.0.0.1:' in page.text
    assert site.token not in page.text


def test_the_token_stays_valid_for_the_run_and_each_use_gets_the_same_session(site: Site) -> None:
    first, second = site.cookie(), site.cookie()
    assert first == second
    assert get(site, "/static/js/textual.js", cookie=first)[0] == 200


def test_a_forged_cookie_or_one_named_for_another_port_is_refused(site: Site) -> None:
    real = site.cookie()
    value = next(iter(real.values()))
    for cookie in (
        {site.guard.cookie_name: value.swapcase()},
        {f"obo_console_web_{site.port + 1}": value},
        {site.guard.cookie_name: ""},
    ):
        status, body = get(site, "/", cookie=cookie)
        assert (status, title(body)) == (401, "401 — Access token needed"), cookie


def test_a_new_run_refuses_the_old_token_and_the_old_cookie(site: Site) -> None:
    old_token, old_cookie = site.token, site.cookie()
    site.close()
    again = Site()
    try:
        status, body = get(again, f"/?token={old_token}")
        assert (status, title(body)) == (403, "403 — Wrong access token")
        status, body = get(again, "/", cookie={again.guard.cookie_name: next(iter(old_cookie.values()))})
        assert (status, title(body)) == (401, "401 — Access token needed")
    finally:
        again.close()


# -- static files: no way out of the static folder --------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/static/../pyproject.toml",
        "/static/%2e%2e/server.py",
        "/static/..%2fserver.py",
        "/static/%2e%2e%2f%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "/static/js/../../server.py",
        "/static//etc/passwd",
        "/static/%2Fetc%2Fpasswd",
    ],
)
def test_static_paths_never_leave_the_static_folder(site: Site, path: str) -> None:
    assert get(site, path)[0] == 401  # no token: refused before any path is looked at
    status, body = get(site, path, cookie=site.cookie())
    assert status in (403, 404), (status, body[:200])
    assert "import" not in body and "root:" not in body


# -- Host and Origin -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "host",
    [
        "evil.example:{port}",
        "127.0.0.1",
        "127.0.0.1:{port}.evil.example",
        "evil.example",
        "127.0.0.2:{port}",
        "0.0.0.0:{port}",
        "localhost.:{port}",
        "",
    ],
)
def test_an_unexpected_host_is_refused_even_with_the_token(site: Site, host: str) -> None:
    status, body = get(site, f"/?token={site.token}", host=host.format(port=site.port))
    assert (status, title(body)) == (403, "403 — Unexpected Host")


def test_a_request_without_any_host_header_is_refused(site: Site) -> None:
    status, body = raw(site, f"GET /?token={site.token} HTTP/1.0\r\n\r\n")
    assert (status, title(body)) == (403, "403 — Unexpected Host")


def test_loopback_names_with_the_port_are_accepted_and_forwarding_headers_change_nothing(site: Site) -> None:
    for host in (f"localhost:{site.port}", f"LOCALHOST:{site.port}", f"[::1]:{site.port}"):
        assert get(site, f"/?token={site.token}", host=host)[0] == 302, host
    status, body = get(
        site, f"/?token={site.token}", host="evil.example", X_Forwarded_Host=f"127.0.0.1:{site.port}"
    )
    assert status == 403


@pytest.mark.parametrize(
    "origin", ["http://evil.example", "http://127.0.0.1:1", "null", "https://127.0.0.1:{port}"]
)
def test_a_cross_origin_websocket_is_refused_even_with_the_cookie(site: Site, origin: str) -> None:
    status, body = upgrade(site, cookie=site.cookie(), origin=origin.format(port=site.port))
    assert (status, title(body)) == (403, "403 — Cross-origin request refused")


def test_the_page_s_own_origin_with_the_cookie_opens_the_websocket(site: Site) -> None:
    status, _ = upgrade(site, cookie=site.cookie(), origin=f"http://127.0.0.1:{site.port}")
    assert status == 101


def test_downloads_need_the_token_too(site: Site) -> None:
    assert get(site, "/download/some-key")[0] == 401
    status, body = get(site, "/download/some-key", cookie=site.cookie())
    assert (status, body) == (404, "Download with key 'some-key' not found")


# -- remote binding -----------------------------------------------------------------------------------------------


def test_a_remote_bind_skips_the_host_check_but_never_the_token() -> None:
    remote = Site(loopback_only=False)
    try:
        assert get(remote, "/", host="console.example:8080")[0] == 401
        assert get(remote, "/?token=wrong", host="console.example:8080")[0] == 403
        assert get(remote, f"/?token={remote.token}", host="console.example:8080")[0] == 302
    finally:
        remote.close()


def test_a_non_loopback_host_needs_allow_remote(isolated_home: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "console.cli", "web", "--host", "0.0.0.0", "--port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.startswith(
        "obo-console: error: --host 0.0.0.0 is not a loopback address: anyone who reaches it and has the URL "
        "could act as the signed-in users."
    )
    assert "add --allow-remote" in result.stderr and result.stdout == ""


def test_allow_remote_warns_who_can_act_as_the_signed_in_users(capsys: pytest.CaptureFixture[str]) -> None:
    assert web_command._check_host("0.0.0.0", True) is False
    assert web_command._check_host("127.0.0.1", False) is True
    err = capsys.readouterr().err
    assert "WARNING: listening on 0.0.0.0, not on loopback" in err
    assert "can open consoles on this machine: sign in (any demo user in local mode)" in err
    assert "Each tab's sign-in stays in its tab" in err
