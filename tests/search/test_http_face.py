"""The local search service's HTTP face (asgi.py): Starlette's answers where no route takes the method, the 16 MB body
limit whatever the sender does, requests on worker threads, and a stop that leaves no thread behind."""

from __future__ import annotations

import secrets
import socket
import threading
from pathlib import Path

import requests

from mcp_server.localcloud.search.app import MAX_BODY
from mcp_server.localcloud.search.auth import EntraTokenValidator
from mcp_server.localcloud.search.service import SearchService
from mcp_server.search_versions import SDK_DEFAULT_API_VERSION
from tests.search.helpers import ISSUER, Signer


def _session() -> requests.Session:
    session = requests.Session()
    session.trust_env = False
    return session


def test_a_method_no_route_takes_is_405_with_the_allowed_methods(own_search: SearchService) -> None:
    for method in ("OPTIONS", "TRACE", "CONNECT"):
        response = _session().request(method, f"{own_search.endpoint}/indexes", timeout=10)
        assert (response.status_code, response.text) == (405, "Method Not Allowed"), method
        assert response.headers["allow"] == "DELETE, GET, HEAD, PATCH, POST, PUT"


def test_a_body_over_16_mb_is_413_in_azures_words(own_search: SearchService) -> None:
    key = own_search.api_key.get_secret_value()
    url = (
        f"{own_search.endpoint}/indexes('any')/docs/search.post.search?api-version={SDK_DEFAULT_API_VERSION}"
    )
    for body in (b"{" + b" " * MAX_BODY + b"}", b" " * (MAX_BODY + 1)):
        response = _session().post(url, data=body, headers={"api-key": key}, timeout=30)
        assert response.status_code == 413
        assert response.json()["error"]["message"] == "The request body is larger than 16 MB."
    # Exactly at the limit the request is read and judged on its content (here: blanks are no JSON).
    response = _session().post(url, data=b" " * MAX_BODY, headers={"api-key": key}, timeout=30)
    assert response.status_code == 400 and "not valid JSON" in response.json()["error"]["message"]


def test_a_sender_that_stops_mid_body_costs_nothing_and_others_are_answered(
    own_search: SearchService,
) -> None:
    """A request whose body never completes waits on the event loop, not on a worker thread: others go on."""
    port = int(own_search.endpoint.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as stalled:
        stalled.sendall(b"POST /indexes HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{")
        response = _session().get(
            f"{own_search.endpoint}/indexes",
            params={"api-version": SDK_DEFAULT_API_VERSION},
            headers={"api-key": own_search.api_key.get_secret_value()},
            timeout=10,
        )
        assert response.status_code == 200 and "value" in response.json()


def test_stop_leaves_no_worker_thread_behind(tmp_path: Path, signer: Signer) -> None:
    def workers() -> set[threading.Thread]:
        return {t for t in threading.enumerate() if t.name.startswith("local-search")}

    before = workers()
    service = SearchService(
        tmp_path,
        secrets.token_urlsafe(24),
        EntraTokenValidator(signer.jwks, issuers={ISSUER}),
        lambda t, o: (),
    )
    with service:
        session = _session()
        for _ in range(3):
            assert (
                session.get(f"{service.endpoint}/indexes", timeout=10).status_code == 401
            )  # no key: answered
        assert workers() - before  # the requests ran on the service's own threads
    for thread in workers() - before:
        thread.join(5)
    assert workers() <= before
