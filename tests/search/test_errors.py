"""Malformed or refused requests get Azure's error shape and the right status, and change nothing."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests

from mcp_server.localcloud.search.service import SearchService

API = "2026-08-01-preview"


class Raw:
    def __init__(self, service: SearchService) -> None:
        self.base = service.endpoint
        self.key = service.api_key.get_secret_value()
        self.session = requests.Session()
        self.session.trust_env = False

    def __call__(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        raw: bytes | None = None,
        headers: dict[str, str] | None = None,
        version: str | None = API,
        key: bool = True,
    ) -> requests.Response:
        params = {"api-version": version} if version else {}
        hdrs = {"api-key": self.key} if key else {}
        hdrs |= headers or {}
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        if data is not None:
            hdrs.setdefault("content-type", "application/json")
        return self.session.request(
            method, self.base + path, params=params, data=data, headers=hdrs, timeout=10
        )


def _azure_error(response: requests.Response, status: int, fragment: str = "") -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert (
        set(body) == {"error"} and body["error"]["code"] == "" and isinstance(body["error"]["message"], str)
    )
    assert fragment in body["error"]["message"]
    return body["error"]["message"]


@pytest.fixture(scope="module")
def raw(own_search: SearchService) -> Raw:
    r = Raw(own_search)
    index = {
        "name": "errs",
        "fields": [
            {"name": "id", "type": "Edm.String", "key": True},
            {"name": "text", "type": "Edm.String"},
            {"name": "n", "type": "Edm.Int32", "filterable": False},
            {"name": "uids", "type": "Collection(Edm.String)", "permissionFilter": "userIds"},
        ],
        "permissionFilterOption": "enabled",
    }
    assert r("POST", "/indexes", body=index).status_code == 201
    assert (
        r(
            "POST",
            "/indexes/errs/docs/index",
            body={"value": [{"id": "a", "text": "hello", "uids": ["all"]}]},
        ).status_code
        == 200
    )
    yield r
    r.session.close()


def test_authentication(raw: Raw) -> None:
    _azure_error(raw("GET", "/indexes", key=False), 401)
    _azure_error(
        raw("GET", "/indexes", key=False, headers={"api-key": "wrong"}), 403, "Authorization failed."
    )
    _azure_error(raw("GET", "/indexes", key=False, headers={"authorization": "Bearer x"}), 401, "api-key")


@pytest.mark.parametrize("version", ["2024-07-02", "2025-08-01", "banana"])
def test_unsupported_api_versions(raw: Raw, version: str) -> None:
    _azure_error(raw("GET", "/indexes", version=version), 400, "api-version")


def test_missing_api_version(raw: Raw) -> None:
    _azure_error(raw("GET", "/indexes", version=None), 400, "api-version")


@pytest.mark.parametrize(
    "version",
    ["2025-05-01-preview", "2025-11-01-preview", "2026-04-01", "2026-05-01-preview", "2026-08-01-preview"],
)
def test_supported_api_versions_both_route_styles(raw: Raw, version: str) -> None:
    for path in ("/indexes('errs')/docs/search.post.search", "/indexes/errs/docs/search"):
        response = raw("POST", path, body={"search": "hello", "count": True}, version=version)
        assert response.status_code == 200 and response.json()["@odata.count"] == 1
    assert raw("GET", "/indexes/errs/docs('a')", version=version).json()["text"] == "hello"
    assert raw("GET", "/indexes/errs/docs/a", version=version).json()["id"] == "a"
    assert raw("GET", "/indexes('errs')/docs/$count", version=version).text == "1"


def test_bad_bodies_and_queries(raw: Raw) -> None:
    _azure_error(raw("POST", "/indexes/errs/docs/search", raw=b"{not json"), 400, "not valid JSON")
    _azure_error(raw("POST", "/indexes/errs/docs/search", body=["x"]), 400)
    _azure_error(raw("POST", "/indexes/errs/docs/search", body={"top": "many"}), 400, "top")
    _azure_error(raw("POST", "/indexes/errs/docs/search", body={"skip": 100001}), 400, "skip")
    _azure_error(raw("POST", "/indexes/errs/docs/search", body={"searchMode": "some"}), 400, "searchMode")
    _azure_error(
        raw("POST", "/indexes/errs/docs/search", body={"select": "url"}),
        400,
        "Invalid expression: Could not find a property named 'url' on type 'search.document'.\r\nParameter name: $select",
    )
    _azure_error(raw("POST", "/indexes/errs/docs/search", body={"filter": "n eq 1"}), 400, "not filterable")
    _azure_error(
        raw("POST", "/indexes/errs/docs/search", body={"filter": "text eq 1"}), 400, "Invalid expression"
    )
    _azure_error(
        raw("POST", "/indexes/errs/docs/search", body={"filter": "text eq 'a' and"}),
        400,
        "Invalid expression",
    )
    _azure_error(
        raw("POST", "/indexes/errs/docs/search", body={"filter": "text eq 'a'; DROP TABLE docs_1"}), 400
    )
    _azure_error(raw("POST", "/indexes/errs/docs/search", body={"orderby": "text sideways"}), 400, "$orderby")
    _azure_error(raw("POST", "/indexes/errs/docs/search", body={"searchFields": "n"}), 400, "searchFields")
    _azure_error(raw("POST", "/indexes/nope/docs/search", body={}), 404, "No index with the name 'nope'")
    _azure_error(raw("GET", "/indexes/errs/docs('missing')"), 404)
    _azure_error(raw("DELETE", "/indexes/errs/docs/search"), 405)
    _azure_error(raw("GET", "/whatever"), 404)
    # Nothing changed.
    assert raw("GET", "/indexes/errs/docs/$count").text == "1"


@pytest.mark.parametrize(
    ("fields", "fragment"),
    [
        (
            [
                {"name": "id", "type": "Edm.String", "key": True},
                {"name": "a", "type": "Collection(Edm.String)", "permissionFilter": "userIds"},
                {"name": "b", "type": "Collection(Edm.String)", "permissionFilter": "userIds"},
            ],
            "Only one field per permission",
        ),
        (
            [
                {"name": "id", "type": "Edm.String", "key": True},
                {
                    "name": "a",
                    "type": "Collection(Edm.String)",
                    "permissionFilter": "userIds",
                    "filterable": False,
                },
            ],
            "filterable",
        ),
        (
            [
                {"name": "id", "type": "Edm.String", "key": True},
                {"name": "a", "type": "Collection(Edm.Int32)", "permissionFilter": "groupIds"},
            ],
            "Edm.String",
        ),
        (
            [
                {"name": "id", "type": "Edm.String", "key": True},
                {"name": "a", "type": "Collection(Edm.String)", "permissionFilter": "everyone"},
            ],
            "permissionFilter",
        ),
        ([{"name": "id", "type": "Edm.Int32", "key": True}], "key field"),
        ([{"name": "text", "type": "Edm.String"}], "key field"),
        ([{"name": "1bad", "type": "Edm.String", "key": True}], "Field name"),
        ([{"name": "id", "type": "Edm.Geography", "key": True}], "unsupported type"),
    ],
)
def test_index_definitions_are_validated(raw: Raw, fields: list[dict[str, Any]], fragment: str) -> None:
    _azure_error(raw("PUT", "/indexes('bad')", body={"name": "bad", "fields": fields}), 400, fragment)
    _azure_error(raw("GET", "/indexes('bad')"), 404)


def test_index_lifecycle(raw: Raw) -> None:
    body = {"name": "life", "fields": [{"name": "id", "type": "Edm.String", "key": True}]}
    created = raw("PUT", "/indexes('life')", body=body, headers={"prefer": "return=representation"})
    assert created.status_code == 201 and created.json()["fields"][0]["key"] is True
    _azure_error(raw("POST", "/indexes", body=body), 409, "already exists")
    body["fields"].append({"name": "uids", "type": "Collection(Edm.String)", "permissionFilter": "userIds"})
    body["permissionFilterOption"] = "enabled"
    updated = raw("PUT", "/indexes('life')", body=body)
    assert updated.status_code == 200 and updated.json()["fields"][1]["permissionFilter"] == "userIds"
    _azure_error(
        raw(
            "PUT",
            "/indexes('life')",
            body={
                "name": "life",
                "fields": body["fields"][1:] + [{"name": "id2", "type": "Edm.String", "key": True}],
            },
        ),
        400,
        "cannot be",
    )
    assert "life" in [i["name"] for i in raw("GET", "/indexes", headers={}).json()["value"]]
    assert raw("DELETE", "/indexes('life')").status_code == 204
    _azure_error(raw("DELETE", "/indexes('life')"), 404)


def test_document_batches(raw: Raw) -> None:
    batch = {
        "value": [
            {"@search.action": "upload", "id": "b1", "text": "one"},
            {"@search.action": "merge", "id": "ghost", "text": "x"},
            {"@search.action": "upload", "id": "bad key!", "text": "x"},
            {"@search.action": "mergeOrUpload", "id": "b2", "text": "two"},
        ]
    }
    response = raw("POST", "/indexes('errs')/docs/search.index", body=batch)
    assert response.status_code == 207
    assert [(r["key"], r["status"], r["statusCode"]) for r in response.json()["value"]] == [
        ("b1", True, 201),
        ("ghost", False, 404),
        ("bad key!", False, 400),
        ("b2", True, 201),
    ]
    merged = raw(
        "POST", "/indexes/errs/docs/index", body={"value": [{"@search.action": "merge", "id": "b1", "n": 5}]}
    )
    assert merged.status_code == 200
    assert raw("GET", "/indexes/errs/docs('b1')", headers={}).status_code == 404  # no 'all': not public
    deleted = raw(
        "POST",
        "/indexes/errs/docs/index",
        body={"value": [{"@search.action": "delete", "id": "b1"}, {"@search.action": "delete", "id": "b2"}]},
    )
    assert deleted.status_code == 200
    # Whole-request failures change nothing.
    _azure_error(
        raw("POST", "/indexes/errs/docs/index", body={"value": [{"id": "c", "unknown": 1}]}), 400, "unknown"
    )
    _azure_error(
        raw("POST", "/indexes/errs/docs/index", body={"value": [{"id": "c", "n": "five"}]}), 400, "Edm.Int32"
    )
    _azure_error(raw("POST", "/indexes/errs/docs/index", body={"value": [{"text": "no key"}]}), 400, "key")
    _azure_error(
        raw("POST", "/indexes/errs/docs/index", body={"value": [{"id": f"k{i}"} for i in range(1001)]}), 413
    )
    _azure_error(
        raw("POST", "/indexes/errs/docs/index", body={"value": [{"@search.action": "upsert", "id": "c"}]}),
        400,
    )
    assert raw("GET", "/indexes/errs/docs/$count").text == "1"


def test_query_token_header_problems(raw: Raw) -> None:
    _azure_error(
        raw(
            "POST",
            "/indexes/errs/docs/search",
            body={},
            headers={"x-ms-query-source-authorization": "Bearer "},
        ),
        401,
    )
    _azure_error(
        raw("POST", "/indexes/errs/docs/search", body={}, headers={"x-ms-enable-elevated-read": "true"}),
        403,
        "Elevated read",
    )


def test_oversized_queries_are_400_not_500(raw: Raw) -> None:
    long_filter = " and ".join(["text eq 'a'"] * 3000)
    _azure_error(raw("POST", "/indexes/errs/docs/search", body={"filter": long_filter}), 400, "clauses")
    many_terms = " ".join(f"w{i}" for i in range(5000))
    _azure_error(raw("POST", "/indexes/errs/docs/search", body={"search": many_terms}), 400, "clauses")
    nested = "(" * 200 + "a" + ")" * 200
    _azure_error(raw("POST", "/indexes/errs/docs/search", body={"search": nested}), 400)
    deep_filter = "not " * 300 + "text eq 'a'"
    _azure_error(raw("POST", "/indexes/errs/docs/search", body={"filter": deep_filter}), 400)
    negations = " ".join(f"-w{i}" for i in range(1000))
    assert raw("POST", "/indexes/errs/docs/search", body={"search": negations}).status_code in (200, 400)


def test_routes_the_way_azure_names_resources(raw: Raw) -> None:
    """Each resource in both path styles; an unknown path or method gets the service's own error, after the
    api-key and api-version checks; names and keys are taken as sent (percent-decoded once, nothing dropped)."""
    assert raw("GET", "/indexes('errs')/").json()["name"] == "errs"
    assert raw("GET", "/indexes/errs/search.stats").json()["documentCount"] == 1
    assert raw("GET", "/indexes('errs')/docs/").json()["value"][0]["id"] == "a"
    _azure_error(
        raw("GET", "/indexes('errs')/docs('it''s')"), 404, "No document with the key 'it's' was found"
    )
    _azure_error(raw("GET", "/indexes/errs/docs/a%23b"), 404, "No document with the key 'a#b' was found")
    # A control character is part of the name: it must not be dropped and resolve to the index "errs".
    _azure_error(raw("GET", "/indexes/errs%0A"), 404, "No index with the name 'errs\n' was found")
    _azure_error(raw("GET", "/indexes/errs/other"), 404, "The resource '/indexes/errs/other' was not found")
    _azure_error(raw("GET", "/nowhere", key=False), 401)
    _azure_error(raw("GET", "/nowhere", version=None), 400, "api-version")
    _azure_error(raw("PATCH", "/indexes('errs')"), 405, "The HTTP method 'PATCH' is not supported")
    _azure_error(raw("POST", "/indexes/errs/docs('a')"), 405, "The HTTP method 'POST' is not supported")
