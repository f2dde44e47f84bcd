"""Fuzzed filters, queries and orderings never produce a server error: a result or Azure's 400 shape."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mcp_server.localcloud.search import SearchService

INDEX = {
    "name": "fuzz",
    "fields": [
        {"name": "id", "type": "Edm.String", "key": True},
        {"name": "text", "type": "Edm.String"},
        {"name": "cat", "type": "Edm.String", "filterable": True, "sortable": True},
        {"name": "n", "type": "Edm.Int32", "filterable": True, "sortable": True},
        {"name": "x", "type": "Edm.Double", "filterable": True},
        {"name": "ok", "type": "Edm.Boolean", "filterable": True},
        {"name": "tags", "type": "Collection(Edm.String)", "filterable": True},
        {"name": "uids", "type": "Collection(Edm.String)", "permissionFilter": "userIds"},
    ],
    "permissionFilterOption": "enabled",
}
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


class Poster:
    def __init__(self, service: SearchService) -> None:
        self.session = requests.Session()
        self.session.trust_env = False
        self.session.headers["api-key"] = service.api_key.get_secret_value()
        self.url = (
            f"{service.endpoint}/indexes('fuzz')/docs/search.post.search?api-version=2026-08-01-preview"
        )
        self.base = service.endpoint

    def search(self, body: dict[str, Any]) -> requests.Response:
        response = self.session.post(self.url, json=body, timeout=30)
        assert response.status_code < 500, (body, response.text)
        if response.status_code != 200:
            assert response.status_code == 400, (body, response.text)
            error = response.json()["error"]
            assert error["code"] == "" and error["message"]
        return response


@pytest.fixture(scope="module")
def poster(own_search: SearchService) -> Iterator[Poster]:
    p = Poster(own_search)
    assert (
        p.session.post(f"{p.base}/indexes?api-version=2026-04-01", json=INDEX, timeout=10).status_code == 201
    )
    docs = [
        {
            "id": f"f{i}",
            "text": f"word{i % 7} shared text-{i % 3}",
            "cat": ["a", "b", None][i % 3],
            "n": i,
            "x": i / 3,
            "ok": i % 2 == 0,
            "tags": [f"t{i % 4}"],
            "uids": ["all"],
        }
        for i in range(60)
    ]
    index_url = f"{p.base}/indexes/fuzz/docs/index?api-version=2026-04-01"
    assert p.session.post(index_url, json={"value": docs}, timeout=10).status_code == 200
    yield p
    p.session.close()


FIELDS = st.sampled_from(["id", "text", "cat", "n", "x", "ok", "tags", "uids", "nope", "t", "search.score()"])
LITERALS = st.one_of(
    st.integers(-(10**12), 10**12).map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.text(max_size=8).map(lambda s: "'" + s.replace("'", "''") + "'"),
    st.text(max_size=8).map(lambda s: "'" + s + "'"),
    st.sampled_from(["true", "false", "null", "2026-01-01T00:00:00Z", "'", "''", "-", "1e999"]),
)
OPS = st.sampled_from(["eq", "ne", "gt", "ge", "lt", "le", "and", "or", "not", "EQ", "=", "in"])


@st.composite
def filters(draw: st.DrawFn, depth: int = 0) -> str:
    kind = draw(st.integers(0, 7 if depth < 3 else 3))
    field = draw(FIELDS)
    if kind == 0:
        return f"{field} {draw(OPS)} {draw(LITERALS)}"
    if kind == 1:
        return f"search.in({field}, {draw(LITERALS)}{', ' + draw(LITERALS) if draw(st.booleans()) else ''})"
    if kind == 2:
        return f"{field}/{draw(st.sampled_from(['any', 'all', 'none']))}(t: t {draw(OPS)} {draw(LITERALS)})"
    if kind == 3:
        return draw(st.text(alphabet="()/:,' abcdeqnotrl01.", max_size=30))
    if kind == 4:
        return f"not ({draw(filters(depth + 1))})"
    if kind == 5:
        return f"{field}/any()"
    return f"({draw(filters(depth + 1))}) {draw(st.sampled_from(['and', 'or', 'AND', '']))} {draw(filters(depth + 1))}"


QUERY_ALPHABET = st.sampled_from(
    list("abcw0123 \"'()+|-*\\~:^/!?&{}[]") + ["word1", "shared", "text", "é", "\u0301"]
)


@FUZZ
@given(flt=filters())
def test_fuzzed_filters(poster: Poster, flt: str) -> None:
    poster.search({"search": "*", "filter": flt, "count": True})


@FUZZ
@given(
    text=st.lists(QUERY_ALPHABET, max_size=25).map("".join),
    mode=st.sampled_from(["any", "all"]),
    fields=st.sampled_from([None, "text", "id", "text,cat", "cat", "nope"]),
)
def test_fuzzed_queries(poster: Poster, text: str, mode: str, fields: str | None) -> None:
    body: dict[str, Any] = {"search": text, "searchMode": mode, "count": True, "top": 5}
    if fields:
        body["searchFields"] = fields
    poster.search(body)


@FUZZ
@given(
    orderby=st.lists(st.tuples(FIELDS, st.sampled_from(["", " asc", " desc", " up"])), max_size=3).map(
        lambda items: ",".join(f + d for f, d in items)
    ),
    select=st.lists(FIELDS, max_size=3).map(",".join),
    top=st.one_of(st.none(), st.integers(-2, 2000)),
    skip=st.one_of(st.none(), st.integers(-2, 200_000)),
)
def test_fuzzed_paging_and_ordering(
    poster: Poster, orderby: str, select: str, top: int | None, skip: int | None
) -> None:
    body: dict[str, Any] = {"search": "shared", "orderby": orderby or None, "select": select or None}
    if top is not None:
        body["top"] = top
    if skip is not None:
        body["skip"] = skip
    poster.search(body)


@FUZZ
@given(
    body=st.dictionaries(
        st.sampled_from(
            ["search", "filter", "top", "skip", "count", "select", "orderby", "searchMode", "queryType"]
        ),
        st.one_of(
            st.none(),
            st.booleans(),
            st.integers(),
            st.text(max_size=10),
            st.lists(st.text(max_size=3), max_size=2),
            st.dictionaries(st.text(max_size=2), st.integers(), max_size=1),
        ),
    )
)
def test_fuzzed_body_types(poster: Poster, body: dict[str, Any]) -> None:
    poster.search(body)
