"""A search service and index for the hostile-input tests: documents with varied readers, values that look like
SQL / FTS5 / OData syntax, and users with few and with many groups. Results are checked against
``tests.search.reference`` evaluated over these same documents."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from azure.core.credentials import AzureKeyCredential
from azure.search.documents import SearchClient

from mcp_server.localcloud.search.auth import EntraTokenValidator
from mcp_server.localcloud.search.service import SearchService
from tests.search.conftest import Directory
from tests.search.helpers import ISSUER, Signer
from tests.search.reference import F, expected_ids

INDEX = "hostile"
API = "2026-08-01-preview"
U1, U2, U3 = (
    "0a000000-0000-0000-0000-0000000000a1",
    "0a000000-0000-0000-0000-0000000000a2",
    "0a000000-0000-0000-0000-0000000000a3",
)
G1, G2 = "0b000000-0000-0000-0000-0000000000b1", "0b000000-0000-0000-0000-0000000000b2"
FILLER_GROUPS = [f"0c000000-0000-0000-0000-{i:012d}" for i in range(58)]
GROUPS = {U1: [G1], U2: [], U3: [G1, G2, *FILLER_GROUPS]}  # U3: 60 groups, 61 principals with its oid

# Values an attacker would try where a string ends up: SQL, FTS5 and OData syntax, quotes, NUL, odd Unicode.
HOSTILE = [
    "'; DROP TABLE docs_1; --",
    "x' or 1 eq 1 or cat eq 'x",
    '" OR 1=1 --',
    "NEAR(drop table, 2)",
    "drop*",
    "{c0 c1} : drop",
    "a\x00b",
    "\u202edrop\u202c table",
    "dröp ﬁle \u0301",
    "😀 emoji",
    "%' OR '%'='",
    "\\\\'\\\"",
]
VOCAB = ["drop", "table", "near", "select", "union", "docs", "dröp", "ﬁle", "river", "stone", "cloud", "all"]
FIELDS = [
    {"name": "id", "type": "Edm.String", "key": True, "sortable": True},
    {"name": "text", "type": "Edm.String", "searchable": True, "filterable": False, "sortable": False},
    {"name": "cat", "type": "Edm.String", "searchable": False, "filterable": True, "sortable": True},
    {"name": "n", "type": "Edm.Int32", "filterable": True, "sortable": True},
    {"name": "ok", "type": "Edm.Boolean", "filterable": True},
    {"name": "tags", "type": "Collection(Edm.String)", "searchable": False, "filterable": True},
    {"name": "uids", "type": "Collection(Edm.String)", "permissionFilter": "userIds", "searchable": False},
    {"name": "gids", "type": "Collection(Edm.String)", "permissionFilter": "groupIds", "searchable": False},
]


def _readers(i: int) -> dict[str, list[str]]:
    """Who reads document i: public, U1, U2, group G1, a filler group, or nobody."""
    kind = i % 6
    return [
        {"uids": ["all"], "gids": []},
        {"uids": [U1], "gids": []},
        {"uids": [U2], "gids": ["none"]},
        {"uids": ["none"], "gids": [G1]},
        {"uids": [], "gids": [FILLER_GROUPS[i % len(FILLER_GROUPS)]]},
        {"uids": [], "gids": []},
    ][kind]


# The service refuses U+0000 in stored strings (SQLite's JSON functions would truncate there): the documents hold
# U+0001 instead, which a filter for the NUL value must not match.
STORED = [v.replace("\x00", "\x01") for v in HOSTILE]


def make_docs() -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for i in range(120):
        text = " ".join(VOCAB[(i * k) % len(VOCAB)] for k in (1, 3, 7) if (i + k) % 4)
        docs.append(
            {
                "id": f"h{i:03d}",
                "text": STORED[i % len(STORED)] + " " + text if i % 5 == 0 else text,
                # each hostile value in two documents with different readers
                "cat": STORED[i // 2] if i < 2 * len(STORED) else ["red", "blue", None][i % 3],
                "n": i,
                "ok": i % 3 == 0,
                "tags": [["t1"], ["t2", "t3"], [], ["t1", "t3"], None][i % 5],
                **_readers(i),
            }
        )
    return docs


DOCS = make_docs()


class Env:
    """The service, its signer, an SDK client and raw request helpers."""

    def __init__(self, service: SearchService, signer: Signer) -> None:
        self.service = service
        self.signer = signer
        self.key = service.api_key.get_secret_value()
        self.client = SearchClient(service.endpoint, INDEX, AzureKeyCredential(self.key), api_version=API)
        self.session = requests.Session()
        self.session.trust_env = False
        self.session.headers["api-key"] = self.key
        self.url = f"{service.endpoint}/indexes('{INDEX}')/docs/search.post.search?api-version={API}"

    def token(self, oid: str | None) -> str | None:
        return self.signer.token(oid) if oid else None

    def sdk_ids(self, text: str = "*", oid: str | None = None, **kw: Any) -> set[str]:
        """Ids the real SDK returns (every page) for the query as ``oid`` (None: no user token)."""
        token = self.token(oid)
        extra = {"query_source_authorization": token} if token else {}
        results = self.client.search(text, select=["id"], **extra, **kw)
        return {r["id"] for r in results}

    def post(self, body: dict[str, Any] | bytes, oid: str | None = None) -> requests.Response:
        headers = {"content-type": "application/json"}
        token = self.token(oid)
        if token:
            headers["x-ms-query-source-authorization"] = token
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        response = self.session.post(self.url, data=data, headers=headers, timeout=60)
        assert response.status_code < 500, response.text
        return response

    def raw_ids(self, body: dict[str, Any], oid: str | None = None) -> tuple[set[str], int | None]:
        response = self.post({"select": "id", "top": 1000, "count": True, **body}, oid)
        assert response.status_code == 200, response.text
        payload = response.json()
        return {r["id"] for r in payload["value"]}, payload.get("@odata.count")

    def expect(self, flt: F, oid: str | None) -> set[str]:
        return expected_ids(DOCS, flt, oid, GROUPS.get(oid or "", ()))


def azure_error(response: requests.Response, status: int, message: str) -> None:
    """The exact refusal: status, Azure's error shape with an empty code, and the message."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.json() == {"error": {"code": "", "message": message}}


def filter_error(message: str) -> str:
    return f"Invalid expression: {message}\r\nParameter name: $filter"


@pytest.fixture(scope="module", name="env")
def env_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    """A started service holding ``DOCS`` in the index ``hostile`` (import it into a test module to use it)."""
    signer = Signer()
    directory = Directory()
    directory.groups.update(GROUPS)
    service = SearchService(
        Path(tmp_path_factory.mktemp("hostile-search")),
        secrets.token_urlsafe(24),
        EntraTokenValidator(signer.jwks, issuers={ISSUER}),
        directory,
    )
    service.start()
    try:
        e = Env(service, signer)
        index = {"name": INDEX, "fields": FIELDS, "permissionFilterOption": "enabled"}
        created = e.session.post(f"{service.endpoint}/indexes?api-version={API}", json=index, timeout=10)
        assert created.status_code == 201, created.text
        upload = e.session.post(
            f"{service.endpoint}/indexes/{INDEX}/docs/index?api-version={API}",
            json={"value": DOCS},
            timeout=30,
        )
        assert upload.status_code == 200, upload.text
        yield e
        e.session.close()
        e.client.close()
    finally:
        service.stop()
