"""Ranking, query syntax, filters, ordering and paging, checked against expectations this test computes itself
over 240 documents it writes (never against recorded output)."""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from typing import Any

import pytest
from azure.core.credentials import AzureKeyCredential
from azure.search.documents import SearchClient
from azure.search.documents.indexes import SearchIndexClient
from azure.search.documents.indexes.models import (
    SearchableField,
    SearchField,
    SearchFieldDataType,
    SearchIndex,
    SimpleField,
)

from mcp_server.localcloud.search.service import SearchService
from tests.search.helpers import bm25_scores

WORDS = [
    "alpha",
    "beta",
    "gamma",
    "delta",
    "epsilon",
    "zeta",
    "theta",
    "iota",
    "kappa",
    "lambda",
    "omega",
    "sigma",
    "alpine",
    "alps",
    "betamax",
    "river",
    "stone",
    "cloud",
    "forest",
    "ember",
    "harbor",
    "meadow",
    "quartz",
    "violet",
    "willow",
    "yarrow",
    "cedar",
    "dune",
    "fjord",
    "glacier",
]
TAGS = ["x", "y", "z", "w"]
CATS = ["red", "blue", "green", "it's", None]


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


def _make_docs() -> list[dict[str, Any]]:
    rng = random.Random(20261126)
    docs = []
    for i in range(240):
        title = " ".join(rng.choices(WORDS, k=rng.randint(1, 4)))
        body_words = rng.choices(WORDS, k=rng.randint(3, 14))
        if i % 7 == 0:
            body_words.insert(rng.randrange(len(body_words) + 1), "wi-fi")
        body = " ".join(body_words)
        if i % 5 == 0:
            body = body.upper()
        docs.append(
            {
                "id": f"d{i:03d}",
                "title": title,
                "body": body,
                "cat": CATS[i % len(CATS)],
                "n": i,
                "price": round(rng.uniform(0, 20), 2),
                "flag": i % 3 == 0,
                "tags": rng.sample(TAGS, rng.randint(0, 3)),
            }
        )
    return docs


DOCS = _make_docs()
BY_ID = {d["id"]: d for d in DOCS}


@pytest.fixture(scope="module")
def client(own_search: SearchService) -> SearchClient:
    credential = AzureKeyCredential(own_search.api_key.get_secret_value())
    SearchIndexClient(own_search.endpoint, credential).create_index(
        SearchIndex(
            name="semantics",
            fields=[
                SimpleField(
                    name="id", type=SearchFieldDataType.STRING, key=True, sortable=True, filterable=True
                ),
                SearchableField(name="title"),
                SearchableField(name="body"),
                SimpleField(name="cat", type=SearchFieldDataType.STRING, filterable=True, sortable=True),
                SimpleField(name="n", type=SearchFieldDataType.INT32, filterable=True, sortable=True),
                SimpleField(name="price", type=SearchFieldDataType.DOUBLE, filterable=True, sortable=True),
                SimpleField(name="flag", type=SearchFieldDataType.BOOLEAN, filterable=True),
                SearchField(
                    name="tags",
                    type=SearchFieldDataType.Collection(SearchFieldDataType.STRING),
                    filterable=True,
                ),
            ],
        )
    )
    client = SearchClient(own_search.endpoint, "semantics", credential)
    assert all(r.succeeded for r in client.upload_documents(DOCS))
    return client


def _tokens(doc: dict[str, Any], fields: tuple[str, ...] = ("title", "body")) -> list[list[str]]:
    return [_words(doc[f]) for f in fields]


def has(term: str, fields: tuple[str, ...] = ("title", "body")) -> set[str]:
    return {d["id"] for d in DOCS if any(term in col for col in _tokens(d, fields))}


def has_prefix(prefix: str) -> set[str]:
    return {d["id"] for d in DOCS if any(t.startswith(prefix) for col in _tokens(d) for t in col)}


def has_phrase(*terms: str) -> set[str]:
    out = set()
    for d in DOCS:
        for col in _tokens(d):
            if any(col[i : i + len(terms)] == list(terms) for i in range(len(col))):
                out.add(d["id"])
    return out


EVERY = set(BY_ID)


def _ids(client: SearchClient, text: str, **kw: Any) -> set[str]:
    return {r["id"] for r in client.search(text, top=1000, **kw)}


def test_ranking_is_bm25(client: SearchClient) -> None:
    # Every searchable field counts towards document length: title, body and tags (searchable by default).
    corpus = {d["id"]: [d["title"], d["body"], " ".join(d["tags"])] for d in DOCS}
    for query in ["quartz", "river stone", "glacier fjord dune", "ALPS"]:
        expected = bm25_scores(corpus, _words(query))
        results = list(client.search(query, top=1000))
        assert {r["id"] for r in results} == set(expected), query
        for r in results:
            assert r["@search.score"] == pytest.approx(expected[r["id"]], rel=1e-9), (query, r["id"])
        scores = [r["@search.score"] for r in results]
        assert scores == sorted(scores, reverse=True), "higher score = better, first"
        assert results[0]["@search.score"] > results[-1]["@search.score"]


def test_unranked_queries_score_one(client: SearchClient) -> None:
    assert {r["@search.score"] for r in client.search("*", top=1000)} == {1.0}
    assert {r["@search.score"] for r in client.search("alp*", top=1000)} == {1.0}


@pytest.mark.parametrize(
    ("query", "mode", "expected"),
    [
        ("quartz", "any", lambda: has("quartz")),
        ("Quartz CEDAR", "any", lambda: has("quartz") | has("cedar")),
        ("quartz cedar", "all", lambda: has("quartz") & has("cedar")),
        ("quartz + cedar", "any", lambda: has("quartz") & has("cedar")),
        ("quartz | cedar", "all", lambda: has("quartz") | has("cedar")),
        ("quartz -cedar", "any", lambda: has("quartz") | (EVERY - has("cedar"))),
        ("quartz -cedar", "all", lambda: has("quartz") - has("cedar")),
        ("-cedar", "any", lambda: EVERY - has("cedar")),
        ('"river stone"', "any", lambda: has_phrase("river", "stone")),
        ('"river stone" + cloud', "any", lambda: has_phrase("river", "stone") & has("cloud")),
        ("alp*", "any", lambda: has_prefix("alp")),
        ("alp* + beta", "any", lambda: has_prefix("alp") & has("beta")),
        ("(quartz | cedar) + dune", "any", lambda: (has("quartz") | has("cedar")) & has("dune")),
        ("dune + (quartz | -cedar)", "any", lambda: has("dune") & (has("quartz") | (EVERY - has("cedar")))),
        ("wi-fi", "all", lambda: has("wi") & has("fi")),
        ("wi-fi", "any", lambda: has("wi") | has("fi")),
        ("\\-cedar", "any", lambda: has("cedar")),
        ("quartz\\+cedar", "all", lambda: has("quartz") & has("cedar")),
        ("*", "any", lambda: EVERY),
        ("", "any", lambda: EVERY),
        ("!!! ???", "any", lambda: EVERY),
    ],
)
def test_simple_query_syntax(
    client: SearchClient, query: str, mode: str, expected: Callable[[], set[str]]
) -> None:
    assert _ids(client, query, search_mode=mode) == expected()


def test_search_fields_restrict_matching(client: SearchClient) -> None:
    assert _ids(client, "quartz", search_fields=["title"]) == has("quartz", ("title",))
    assert _ids(client, "quartz cedar", search_fields=["body"]) == has("quartz", ("body",)) | has(
        "cedar", ("body",)
    )


def _matches(doc: dict[str, Any], predicate: Callable[[dict[str, Any]], bool]) -> bool:
    return predicate(doc)


FILTERS: list[tuple[str, Callable[[dict[str, Any]], bool]]] = [
    ("n gt 100", lambda d: d["n"] > 100),
    ("n ge 100 and n lt 150", lambda d: 100 <= d["n"] < 150),
    ("not (n lt 200)", lambda d: d["n"] >= 200),
    ("n eq 7 or n eq 9 or n le 2", lambda d: d["n"] in (0, 1, 2, 7, 9)),
    ("cat eq 'red'", lambda d: d["cat"] == "red"),
    ("cat ne 'red'", lambda d: d["cat"] != "red"),
    ("cat eq 'it''s'", lambda d: d["cat"] == "it's"),
    ("cat eq null", lambda d: d["cat"] is None),
    ("cat ne null and not (cat eq 'blue')", lambda d: d["cat"] not in (None, "blue")),
    ("not (cat eq 'red')", lambda d: d["cat"] != "red"),
    ("price le 10.5", lambda d: d["price"] <= 10.5),
    ("price gt 5 and price lt 6.25", lambda d: 5 < d["price"] < 6.25),
    ("flag eq true", lambda d: d["flag"]),
    ("flag", lambda d: d["flag"]),
    ("not flag", lambda d: not d["flag"]),
    ("flag ne true", lambda d: not d["flag"]),
    ("tags/any(t: t eq 'x')", lambda d: "x" in d["tags"]),
    ("tags/any(t: t eq 'x' or t eq 'y')", lambda d: bool({"x", "y"} & set(d["tags"]))),
    ("tags/any(t: search.in(t, 'x|z', '|'))", lambda d: bool({"x", "z"} & set(d["tags"]))),
    ("tags/any()", lambda d: bool(d["tags"])),
    ("not tags/any()", lambda d: not d["tags"]),
    ("tags/all(t: t ne 'x')", lambda d: "x" not in d["tags"]),
    ("search.in(cat, 'red,blue')", lambda d: d["cat"] in ("red", "blue")),
    ("search.in(cat, 'red blue', ' ')", lambda d: d["cat"] in ("red", "blue")),
    ("search.in(id, 'd001, d002,d003')", lambda d: d["id"] in ("d001", "d002", "d003")),
    ("(cat eq 'red' or cat eq 'blue') and n lt 50", lambda d: d["cat"] in ("red", "blue") and d["n"] < 50),
    ("true", lambda d: True),
    ("false", lambda d: False),
]


@pytest.mark.parametrize(("expr", "predicate"), FILTERS, ids=[f[0] for f in FILTERS])
def test_filters(client: SearchClient, expr: str, predicate: Callable[[dict[str, Any]], bool]) -> None:
    expected = {d["id"] for d in DOCS if predicate(d)}
    assert _ids(client, "*", filter=expr) == expected
    # Combined with text search: the intersection.
    assert _ids(client, "quartz", filter=expr) == expected & has("quartz")


def test_orderby_top_skip_count_select(client: SearchClient) -> None:
    def key(d: dict[str, Any]) -> tuple[Any, ...]:
        return (d["cat"] is not None, d["cat"] or "", -d["n"])  # nulls first ascending

    ordered = [d["id"] for d in sorted(DOCS, key=key)]
    got = [r["id"] for r in client.search("*", order_by=["cat asc", "n desc"], top=1000)]
    assert got == ordered
    by_price = [d["id"] for d in sorted(DOCS, key=lambda d: (-d["price"], d["n"]))]
    prices = [r["price"] for r in client.search("*", order_by=["price desc"], top=1000)]
    assert prices == [BY_ID[i]["price"] for i in by_price]

    page = client.search(
        "*", order_by=["n asc"], top=7, skip=11, include_total_count=True, select=["id", "n"]
    )
    assert page.get_count() == 240
    rows = list(page)
    assert [r["n"] for r in rows] == list(range(11, 18))
    assert all(
        set(r)
        - {
            "@search.score",
            "@search.reranker_score",
            "@search.highlights",
            "@search.captions",
            "@search.document_debug_info",
            "@search.reranker_boosted_score",
        }
        == {"id", "n"}
        for r in rows
    )

    ranked = list(client.search("quartz cedar", order_by=["search.score() asc"], top=1000))
    assert [r["@search.score"] for r in ranked] == sorted(r["@search.score"] for r in ranked)
    filtered_count = client.search("quartz", filter="n lt 120", include_total_count=True, top=1)
    assert filtered_count.get_count() == len(has("quartz") & {d["id"] for d in DOCS if d["n"] < 120})


def test_get_search_route_matches_post(own_search: SearchService, client: SearchClient) -> None:
    import requests

    response = requests.get(
        f"{own_search.endpoint}/indexes/semantics/docs",
        params={
            "api-version": "2025-05-01-preview",
            "search": "quartz -cedar",
            "searchMode": "all",
            "$filter": "n lt 100",
            "$select": "id",
            "$top": "1000",
            "$count": "true",
        },
        headers={"api-key": own_search.api_key.get_secret_value()},
        timeout=10,
    )
    assert response.status_code == 200
    body = response.json()
    expected = (has("quartz") - has("cedar")) & {d["id"] for d in DOCS if d["n"] < 100}
    assert {r["id"] for r in body["value"]} == expected
    assert body["@odata.count"] == len(expected)
