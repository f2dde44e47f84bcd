"""A local TLS service stops without waiting on idle keep-alive clients (which never send TLS close_notify), and a
request in flight while it stops still gets its whole answer."""

from __future__ import annotations

import asyncio
import logging
import threading
from pathlib import Path

import requests
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mcp_server.localcloud.ca import ensure_tls
from mcp_server.localcloud.serve import ThreadedServer

BODY = b"x" * 200_000


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def test_stop_neither_waits_on_idle_tls_clients_nor_cuts_an_answer_in_flight(tmp_path: Path) -> None:
    ca_cert, tls = ensure_tls(tmp_path)
    started = threading.Event()

    async def slow(_: Request) -> Response:
        started.set()
        await asyncio.sleep(0.3)
        return Response(BODY, media_type="application/octet-stream")

    async def hello(_: Request) -> Response:
        return Response(b"hello")

    server = ThreadedServer(Starlette(routes=[Route("/", hello), Route("/slow", slow)]), "tls-stop", tls=tls)
    server.start()
    records = _Records()
    uvicorn_log = logging.getLogger("uvicorn.error")
    uvicorn_log.addHandler(records)
    idle, busy = requests.Session(), requests.Session()
    for session in (idle, busy):
        session.verify, session.trust_env = str(ca_cert), False
    try:
        assert idle.get(f"{server.base_url}/", timeout=5).content == b"hello"  # kept alive, then idle
        answers: list[requests.Response] = []
        in_flight = threading.Thread(
            target=lambda: answers.append(busy.get(f"{server.base_url}/slow", timeout=10))
        )
        in_flight.start()
        assert started.wait(5)
        server.stop()
        in_flight.join(10)
    finally:
        uvicorn_log.removeHandler(records)
        idle.close()
        busy.close()
        server.stop()
    assert [(a.status_code, a.content == BODY) for a in answers] == [(200, True)]
    # uvicorn's own words when a stop sits out its graceful timeout (2 s) on a connection that never closes
    assert not [m for m in records.messages if "graceful shutdown exceeded" in m], records.messages
