"""A lean MCP client for load generation: streamable HTTP (protocol 2026-07-28, the per-request envelope FastMCP's
client speaks) on one keep-alive connection per client, HTTP/1.1 parsed by httptools (uvicorn's parser).

Why not FastMCP's ``Client``: on this 2-core machine it spends about 1 ms of CPU per call (SSE parsing, pydantic
models, a task group per request) and, after every streamed answer, closes its connection and opens a new one;
thirty of them take a core of their own. Even aiohttp costs 0.55 ms of CPU per call. Whatever the clients burn is
taken from the server workers they load (in a real deployment the consoles run on the users' machines), so this
client does as little as a correct one can: it sends the request FastMCP's client sends (method, headers,
``_meta``, a progress token when it asks for the steps), reads the whole answer, JSON or SSE (so the connection is
kept), and parses every message. bench_load.py checks every loaded result against the same user's result through
FastMCP's ``Client``.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httptools

PROTOCOL = "2026-07-28"
CLIENT_META = {
    "io.modelcontextprotocol/protocolVersion": PROTOCOL,
    "io.modelcontextprotocol/clientInfo": {"name": "obo-console-bench-load", "version": "1"},
    "io.modelcontextprotocol/clientCapabilities": {},
}


class CallFailed(Exception):
    """The server answered with a JSON-RPC error, an HTTP error, or no answer to the call."""


@dataclass
class Answer:
    result: dict[str, Any]
    notifications: int  # progress notifications received before the result


@dataclass
class _Response:
    status: int
    content_type: str
    body: bytes
    keep_alive: bool


class _Connection(asyncio.Protocol):
    """One HTTP/1.1 connection: one request at a time, each answer handed to the waiting call."""

    def __init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.waiter: asyncio.Future[_Response] | None = None
        self.closed = False
        self._content_type = ""
        self._body: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(CallFailed(f"the answer is not HTTP/1.1: {exc}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail(CallFailed("the server closed the connection before answering"))

    def _fail(self, error: Exception) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(error)

    # httptools callbacks
    def on_message_begin(self) -> None:
        self._content_type, self._body = "", []

    def on_header(self, name: bytes, value: bytes) -> None:
        if name.lower() == b"content-type":
            self._content_type = value.decode("latin-1")

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        response = _Response(
            self.parser.get_status_code(),
            self._content_type,
            b"".join(self._body),
            self.parser.should_keep_alive(),
        )
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(response)


class LeanMcpClient:
    """One client session: its own connection, its own request ids."""

    def __init__(self, url: str, token: str | None = None, *, steps: bool = True) -> None:
        parts = urlsplit(url)
        self.host, self.port, self.path = parts.hostname or "127.0.0.1", parts.port or 80, parts.path or "/"
        self.steps = steps
        auth = f"Authorization: Bearer {token}\r\n" if token else ""
        self._head = (
            f"POST {self.path} HTTP/1.1\r\nHost: {parts.netloc}\r\nAccept: application/json, text/event-stream\r\n"
            f"Content-Type: application/json\r\nMCP-Protocol-Version: {PROTOCOL}\r\n{auth}"
        )
        self._ids = itertools.count(1)
        self._connection: _Connection | None = None

    async def __aenter__(self) -> LeanMcpClient:
        await self._connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._connection is not None and self._connection.transport is not None:
            self._connection.transport.close()

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        _, connection = await loop.create_connection(_Connection, self.host, self.port)
        self._connection = connection
        return connection

    async def call_tool(self, name: str, arguments: dict[str, Any]) -> Answer:
        request_id = next(self._ids)
        meta: dict[str, Any] = dict(CLIENT_META)
        if self.steps:
            meta["progressToken"] = request_id
        body = json.dumps(
            {
                "jsonrpc": "2.0",
                "id": request_id,
                "method": "tools/call",
                "params": {"name": name, "arguments": arguments, "_meta": meta},
            }
        ).encode()
        response = await self._send(
            f"{self._head}Mcp-Method: tools/call\r\nMcp-Name: {name}\r\nContent-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        text = response.body.decode()
        if response.status != 200:
            raise CallFailed(f"HTTP {response.status}: {text[:200]}")
        events = _sse_data(text) if response.content_type.startswith("text/event-stream") else [text]
        notifications = 0
        for message in map(json.loads, events):
            if message.get("method") == "notifications/progress":
                notifications += 1
            elif message.get("id") == request_id:
                if "error" in message:
                    raise CallFailed(f"JSON-RPC error {message['error']}")
                return Answer(result=message["result"], notifications=notifications)
        raise CallFailed("the answer ended without the call's result")

    async def _send(self, request: bytes) -> _Response:
        connection = self._connection
        if connection is None or connection.closed:
            connection = await self._connect()
        assert connection.transport is not None
        connection.waiter = asyncio.get_running_loop().create_future()
        connection.transport.write(request)
        response = await connection.waiter
        if not response.keep_alive:
            connection.transport.close()
        return response


def _sse_data(text: str) -> list[str]:
    """The data of each event of an SSE body (an event's data lines joined), in order."""
    events = []
    for event in text.replace("\r\n", "\n").split("\n\n"):
        data = "\n".join(line[5:].lstrip() for line in event.split("\n") if line.startswith("data:"))
        if data:
            events.append(data)
    return events
