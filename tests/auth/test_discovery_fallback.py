"""``DiscoverySession``: MSAL's HTTP client remembers the identity platform's discovery document and serves the
saved copy while the platform is unreachable (refused connection or a 5xx), against a real loopback server."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

from console.core.auth.msal_app import DiscoverySession

DOCUMENT = {
    "issuer": "https://idp.test/t1/v2.0",
    "authorization_endpoint": "https://idp.test/t1/authorize",
    "token_endpoint": "https://idp.test/t1/token",
}


class Idp(ThreadingHTTPServer):
    status = 200
    body: bytes = json.dumps(DOCUMENT).encode()


class Handler(BaseHTTPRequestHandler):
    server: Idp

    def do_GET(self) -> None:  # http.server's naming
        self.send_response(self.server.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(self.server.body)))
        self.end_headers()
        self.wfile.write(self.server.body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def idp() -> Iterator[Idp]:
    server = Idp(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def test_saved_document_serves_while_the_platform_is_down(idp: Idp, tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{idp.server_address[1]}/t1/v2.0/.well-known/openid-configuration"
    saved = tmp_path / "identity-metadata.json"
    session = DiscoverySession(saved)

    assert session.get(url).json() == DOCUMENT and session.unreachable is None
    assert json.loads(saved.read_text())[url]["document"] == DOCUMENT
    assert saved.stat().st_mode & 0o777 == 0o600

    idp.body = b'{"error": "not a discovery document"}'
    assert session.get(url).json() == {"error": "not a discovery document"}
    assert json.loads(saved.read_text())[url]["document"] == DOCUMENT  # the last good one is kept

    idp.status = 503
    response = session.get(url)
    assert (response.status_code, response.json(), session.unreachable) == (200, DOCUMENT, "HTTP 503")

    idp.shutdown()
    idp.server_close()
    response = session.get(url)
    assert (response.status_code, response.json()) == (200, DOCUMENT)
    assert session.unreachable == "connection failed (ConnectionError)"

    other = url.replace("/t1/", "/t2/")  # never fetched: nothing to work from, the error stands
    with pytest.raises(requests.ConnectionError):
        DiscoverySession(saved).get(other)
