"""Groups overage, hostile: the server calls only its configured Microsoft Graph. A token whose ``_claim_sources``
names an attacker's URL is never fetched; a Graph answer whose ``@odata.nextLink`` or redirect points elsewhere is
not followed (the user's Graph token goes nowhere else) — the reason is then unknown, the results unchanged."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from mcp_server.server.app import create_server
from mcp_server.server.runner import serve_threaded
from mcp_server.stack import LocalStack
from tests.fixtures.stack import OwnServer
from tests.server.helpers import call, expected_names

Answer = Callable[[str], tuple[int, dict[str, str], dict[str, Any]]]


class Recorder:
    """A loopback HTTP server that records every request (path, Authorization) and answers with ``answer``."""

    def __init__(self, answer: Answer) -> None:
        self.requests: list[tuple[str, str | None]] = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                recorder.requests.append((self.path, self.headers.get("Authorization")))
                status, headers, body = answer(self.path)
                data = json.dumps(body).encode()
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_POST = do_GET

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def attacker() -> Iterator[Recorder]:
    recorder = Recorder(
        lambda path: (200, {}, {"value": [{"@odata.type": "#microsoft.graph.group", "id": "x"}]})
    )
    try:
        yield recorder
    finally:
        recorder.close()


def _documents(url: str, token: str) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    result = asyncio.run(call(url, token))
    assert not result.is_error, result.content
    return {d["name"]: d for d in result.structured_content["documents"]}, result.meta["obo_console"]


def _group(stack: LocalStack, name: str) -> str:
    return next(g.id for g in stack.tenant.groups if g.name == name)


def test_a_claim_source_naming_an_attacker_url_is_never_fetched(
    local_stack: LocalStack, own_mcp_server: OwnServer, attacker: Recorder
) -> None:
    hostile = {
        "_claim_names": {"groups": "src1"},
        "_claim_sources": {"src1": {"endpoint": f"{attacker.url}/steal"}},
    }
    token = local_stack.identity.issue_access_token("erin", extra_claims=hostile)
    documents, meta = _documents(own_mcp_server.mcp_url, token)
    assert attacker.requests == []  # not one request, so no token either
    assert set(documents) == expected_names(local_stack, "erin")
    gid = _group(local_stack, "Project 233")
    assert documents["Project 233 risk register"]["visible_because"] == [
        {"field": "group", "value": gid, "reason": "group"}
    ]
    assert meta["ran_as"]["groups_source"] == "graph"


def test_a_groups_claim_next_to_the_overage_claims_is_not_believed(
    local_stack: LocalStack, own_mcp_server: OwnServer
) -> None:
    """Entra never sends both; if a token does, the memberships come from Graph, not from the token's list."""
    hr = _group(local_stack, "HR")
    token = local_stack.identity.issue_access_token("erin", extra_claims={"groups": [hr]})
    _, meta = _documents(own_mcp_server.mcp_url, token)
    erin = local_stack.tenant.user_by_login("erin")
    assert erin is not None
    assert meta["ran_as"]["groups_source"] == "graph" and meta["ran_as"]["groups"] == list(erin.groups)
    assert hr not in meta["ran_as"]["groups"]


@pytest.fixture
def hostile_graph_server(local_stack: LocalStack, attacker: Recorder) -> Iterator[tuple[OwnServer, Recorder]]:
    """A server whose configured Graph answers one page and a next link on the attacker's host."""

    def answer(path: str) -> tuple[int, dict[str, str], dict[str, Any]]:
        return (
            200,
            {},
            {
                "value": [{"@odata.type": "#microsoft.graph.group", "id": _group(local_stack, "All Staff")}],
                "@odata.nextLink": f"{attacker.url}/v1.0/me/transitiveMemberOf?$skiptoken=abc",
            },
        )

    graph = Recorder(answer)
    server = create_server(local_stack.server_config(port=0, graph_endpoint=graph.url))
    threaded = serve_threaded(server)
    try:
        yield OwnServer(server, f"{threaded.base_url}/mcp"), graph
    finally:
        threaded.stop()
        graph.close()


def test_a_next_link_off_the_configured_graph_is_not_followed(
    local_stack: LocalStack, hostile_graph_server: tuple[OwnServer, Recorder], attacker: Recorder
) -> None:
    server, graph = hostile_graph_server
    documents, meta = _documents(server.mcp_url, local_stack.identity.issue_access_token("erin"))
    assert [path for path, _ in graph.requests] == ["/v1.0/me/transitiveMemberOf?$select=id&$top=999"]
    assert graph.requests[0][1] is not None and graph.requests[0][1].startswith("Bearer ")
    assert attacker.requests == []
    reason = "Microsoft Graph's next-page link points outside the configured Graph endpoint"
    assert meta["ran_as"]["groups_source"] == "unknown" and meta["ran_as"]["groups_error"] == reason
    assert set(documents) == expected_names(local_stack, "erin")
    assert documents["Project 007 status report"]["visible_because"] == [
        {"field": "group", "value": None, "reason": "unknown", "detail": reason}
    ]


def test_a_redirect_from_graph_is_not_followed(local_stack: LocalStack, attacker: Recorder) -> None:
    redirecting = Recorder(lambda path: (302, {"Location": f"{attacker.url}/v1.0/me/transitiveMemberOf"}, {}))
    server = create_server(local_stack.server_config(port=0, graph_endpoint=redirecting.url))
    threaded = serve_threaded(server)
    try:
        documents, meta = _documents(
            f"{threaded.base_url}/mcp", local_stack.identity.issue_access_token("erin")
        )
    finally:
        threaded.stop()
        redirecting.close()
    assert len(redirecting.requests) == 1 and attacker.requests == []
    assert meta["ran_as"]["groups_error"] == "Microsoft Graph answered HTTP 302"
    assert set(documents) == expected_names(local_stack, "erin")
