"""The async search path (azure.search.documents.aio, what tool calls use) returns exactly what the synchronous
one did: same users, same queries, same documents in the same order, trimmed the same way."""

from __future__ import annotations

import asyncio
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from pydantic import SecretStr

from mcp_server.server.documents import DocumentSearch, SearchFailed, environment_settings_apply
from mcp_server.server.obo import OboExchanger, OboToken
from mcp_server.stack import LocalStack
from tests.fixtures.forwarding import pipe
from tests.fixtures.stack import api_token

USERS = ("alice", "bob", "carol")
QUERIES = ("*", "report", "plan OR budget", "zzz-no-such-word")


def _obo(stack: LocalStack, login: str) -> tuple[OboToken, str, list[str]]:
    exchanger = OboExchanger(stack.server_config())
    try:
        token = exchanger.exchange(api_token(stack, login))
    finally:
        exchanger.close()
    return token, str(token.claims["oid"]), [str(g) for g in token.claims.get("groups") or []]


@pytest.mark.parametrize("login", USERS)
async def test_async_search_returns_exactly_the_sync_result(local_stack: LocalStack, login: str) -> None:
    obo, oid, groups = _obo(local_stack, login)
    search = DocumentSearch(local_stack.server_config())
    try:
        for query in QUERIES:
            for top in (50, 2):
                expected = search.search_as(query, top, obo, oid, groups)
                got = await search.search_as_async(query, top, obo, oid, groups)
                assert got == expected, (login, query, top)
        assert await search.search_as_async("*", 50, obo, oid, groups)  # the demo data gives everyone some
    finally:
        await search.aclose()
        search.close()


async def test_async_search_refuses_without_a_user_token(local_stack: LocalStack) -> None:
    search = DocumentSearch(local_stack.server_config())
    empty = OboToken(access_token=SecretStr(""), expires_at=0.0, claims={})
    try:
        with pytest.raises(
            SearchFailed, match="no OBO token: refusing to search without the user's identity"
        ):
            await search.search_as_async("*", 5, empty, "x", [])
    finally:
        await search.aclose()
        search.close()


async def test_async_client_is_made_once_and_reused_until_closed(local_stack: LocalStack) -> None:
    obo, oid, groups = _obo(local_stack, "alice")
    search = DocumentSearch(local_stack.server_config())
    try:
        await search.search_as_async("*", 5, obo, oid, groups)
        first = search._aio()
        await search.search_as_async("*", 5, obo, oid, groups)
        assert search._aio() is first  # one client (one connection pool) per server
        await search.aclose()
        assert search._async_client is None
    finally:
        await search.aclose()
        search.close()


def _without_env_settings(monkeypatch: pytest.MonkeyPatch, home: Path) -> None:
    """No proxy variable, no netrc file: nothing in the environment that aiohttp would read for a request."""
    for name in list(os.environ):
        if name.lower().endswith("_proxy"):
            monkeypatch.delenv(name)
    monkeypatch.delenv("NETRC", raising=False)
    monkeypatch.setenv("HOME", str(home))


def test_environment_settings_apply_only_when_the_environment_sets_any(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _without_env_settings(monkeypatch, tmp_path)
    assert environment_settings_apply() is False
    (tmp_path / ".netrc").write_text("machine example.org login a password b\n")
    assert environment_settings_apply() is True  # ~/.netrc
    monkeypatch.setenv("NETRC", str(tmp_path / "absent"))
    assert environment_settings_apply() is False  # NETRC names the file aiohttp reads, and it is not there
    monkeypatch.setenv("NETRC", str(tmp_path / ".netrc"))
    assert environment_settings_apply() is True
    monkeypatch.delenv("NETRC")
    (tmp_path / ".netrc").unlink()
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    assert environment_settings_apply() is True


class _RecordingExecutor(ThreadPoolExecutor):
    """The loop's default executor, counting what is handed to it (aiohttp's per-request environment lookups)."""

    def __init__(self) -> None:
        super().__init__(max_workers=2)
        self.submitted: list[str] = []

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
        self.submitted.append(getattr(fn, "__name__", repr(fn)))
        return super().submit(fn, *args, **kwargs)


async def test_async_search_hops_to_no_worker_thread_without_env_settings(
    local_stack: LocalStack, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    obo, oid, groups = _obo(local_stack, "alice")
    _without_env_settings(monkeypatch, tmp_path)
    search = DocumentSearch(local_stack.server_config())
    executor = _RecordingExecutor()
    loop = asyncio.get_running_loop()
    try:
        expected = search.search_as("*", 50, obo, oid, groups)
        search.fields()  # the index definition, read once (on a thread) before the calls counted here
        loop.set_default_executor(executor)
        for _ in range(3):
            assert await search.search_as_async("*", 50, obo, oid, groups) == expected
        # Before: a proxy lookup and a netrc lookup on the default executor for every request.
        assert executor.submitted == []
    finally:
        await search.aclose()
        search.close()
        executor.shutdown()


async def test_async_search_still_goes_through_the_proxy_the_environment_names(
    local_stack: LocalStack, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    obo, oid, groups = _obo(local_stack, "alice")
    _without_env_settings(monkeypatch, tmp_path)
    tunnels: list[str] = []
    proxy = await asyncio.start_server(lambda r, w: _tunnel(r, w, tunnels), "127.0.0.1", 0)
    port = proxy.sockets[0].getsockname()[1]
    search = DocumentSearch(local_stack.server_config())
    try:
        expected = search.search_as("*", 50, obo, oid, groups)  # before any proxy is set: direct
        monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{port}")
        monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{port}")
        assert await search.search_as_async("*", 50, obo, oid, groups) == expected
        host = urlsplit(local_stack.server_config().search_endpoint).netloc
        assert tunnels and set(tunnels) == {host}
    finally:
        await search.aclose()
        search.close()
        proxy.close()


async def _tunnel(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, seen: list[str]) -> None:
    """A minimal forward proxy: CONNECT host:port (https) or an absolute-URL request (http), then bytes both ways."""
    head = await reader.readuntil(b"\r\n\r\n")
    method, target, _ = head.split(b"\r\n", 1)[0].decode().split(" ", 2)
    host = target if method == "CONNECT" else urlsplit(target).netloc
    seen.append(host)
    name, _, port = host.rpartition(":")
    upstream_reader, upstream_writer = await asyncio.open_connection(name, int(port))
    if method == "CONNECT":
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
    else:
        upstream_writer.write(head)

    await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer), return_exceptions=True)
