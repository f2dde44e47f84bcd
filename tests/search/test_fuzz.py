"""Fuzzed filters, queries and orderings: never a server error, and wherever the meaning is known, the reference
result (``tests.search.reference``) for the caller, never a document the caller may not read.

Filters are generated with their meaning: valid pieces (the answer must equal the reference), pieces the service
must refuse (unknown fields, mismatched types, bad operators: a 400), and random text (either, but a 200 must stay
within what the caller may read)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mcp_server.localcloud.search.service import SearchService
from tests.search.helpers import Signer
from tests.search.reference import has_any_word, has_prefix, quote, visible, words

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
U1 = "0a000000-0000-0000-0000-0000000000f1"
SEARCHABLE = ["text", "cat", "tags", "uids"]  # string fields are searchable unless told otherwise
DOCS: list[dict[str, Any]] = [
    {
        "id": f"f{i}",
        "text": f"word{i % 7} shared text-{i % 3}",
        "cat": ["a", "b", None][i % 3],
        "n": i,
        "x": i / 3,
        "ok": i % 2 == 0,
        "tags": [[f"t{i % 4}"], [], None, ["t1", "t2"]][i % 4] if i % 5 else [f"t{i % 4}"],
        "uids": [["all"], [U1], ["none"], []][(i // 5) % 4],  # independent of the tags pattern
    }
    for i in range(60)
]


class Poster:
    def __init__(self, service: SearchService, signer: Signer) -> None:
        self.session = requests.Session()
        self.session.trust_env = False
        self.session.headers["api-key"] = service.api_key.get_secret_value()
        self.url = (
            f"{service.endpoint}/indexes('fuzz')/docs/search.post.search?api-version=2026-08-01-preview"
        )
        self.base = service.endpoint
        self.signer = signer

    def search(self, body: dict[str, Any], oid: str | None = None) -> requests.Response:
        headers = {"x-ms-query-source-authorization": self.signer.token(oid)} if oid else {}
        response = self.session.post(self.url, json=body, headers=headers, timeout=30)
        assert response.status_code < 500, (body, response.text)
        if response.status_code != 200:
            assert response.status_code == 400, (body, response.text)
            error = response.json()["error"]
            assert error["code"] == "" and error["message"]
        else:
            ids = {r["id"] for r in response.json()["value"] if "id" in r}
            assert ids <= readable(oid), body  # never a document the caller may not read
        return response


def readable(oid: str | None) -> set[str]:
    return {d["id"] for d in DOCS if visible(d, oid, (), groups_field="none")}


@pytest.fixture(scope="module")
def poster(own_search: SearchService, signer: Signer) -> Iterator[Poster]:
    p = Poster(own_search, signer)
    assert (
        p.session.post(f"{p.base}/indexes?api-version=2026-08-01-preview", json=INDEX, timeout=10).status_code
        == 201
    )
    index_url = f"{p.base}/indexes/fuzz/docs/index?api-version=2026-04-01"
    assert p.session.post(index_url, json={"value": DOCS}, timeout=10).status_code == 200
    yield p
    p.session.close()


# ---- filters with their meaning ---------------------------------------------------------------------------------

VALID, INVALID, UNKNOWN = "valid", "invalid", "unknown"


@dataclass(frozen=True)
class Gen:
    text: str
    status: str
    pred: Callable[[dict[str, Any]], bool] = lambda d: False


def _cmp(op: str, left: Any, right: Any) -> bool:
    if op in ("eq", "ne"):
        same = left == right and (left is None) == (right is None)
        return same if op == "eq" else not same
    if left is None or right is None:
        return False
    return {"gt": left > right, "ge": left >= right, "lt": left < right, "le": left <= right}[op]


ORDER_OPS = st.sampled_from(["eq", "ne", "gt", "ge", "lt", "le"])


@st.composite
def valid_atoms(draw: st.DrawFn) -> Gen:
    kind = draw(st.integers(0, 8))
    op = draw(ORDER_OPS)
    if kind == 0:
        v = draw(st.integers(-5, 65))
        return Gen(f"n {op} {v}", VALID, lambda d: _cmp(op, d["n"], v))
    if kind == 1:
        v = draw(st.sampled_from([-1.0, 0.5, 3, 3.0, 7.25, 19.999, 1e3]))
        return Gen(f"x {op} {v!r}", VALID, lambda d: _cmp(op, d["x"], v))
    if kind == 2:
        v = draw(st.sampled_from(["a", "b", "c", "", "it's", "A"]))
        return Gen(f"cat {op} {quote(v)}", VALID, lambda d: _cmp(op, d["cat"], v))
    if kind == 3:
        eq = draw(st.sampled_from(["eq", "ne"]))
        field = draw(st.sampled_from(["cat", "ok", "n"]))
        return Gen(f"{field} {eq} null", VALID, lambda d: _cmp(eq, d[field], None))
    if kind == 4:
        b = draw(st.booleans())
        text = draw(st.sampled_from([f"ok eq {str(b).lower()}", "ok", f"ok ne {str(not b).lower()}"]))
        want = True if text == "ok" else b
        return Gen(text, VALID, lambda d: d["ok"] is want)
    if kind == 5:
        values = draw(st.lists(st.sampled_from(["a", "b", "z", "t1"]), min_size=1, max_size=3))
        delim = draw(st.sampled_from([",", "|", " "]))
        arg = quote(delim.join(values)) + ("" if delim in ", " else f", {quote(delim)}")
        return Gen(f"search.in(cat, {arg})", VALID, lambda d: d["cat"] in values)
    if kind == 6:
        v = draw(st.sampled_from(["t0", "t1", "t2", "t3", "t9"]))
        return Gen(f"tags/any(t: t eq {quote(v)})", VALID, lambda d: v in (d["tags"] or []))
    if kind == 7:
        v = draw(st.sampled_from(["t0", "t1", "t2"]))
        return Gen(f"tags/all(t: t ne {quote(v)})", VALID, lambda d: v not in (d["tags"] or []))
    return Gen("tags/any()", VALID, lambda d: bool(d["tags"]))


INVALID_ATOMS = st.sampled_from(
    [
        "nope eq 1",
        "n eq 'a'",
        "cat eq 1",
        "ok eq 1",
        "n EQ 1",
        "n = 1",
        "cat gt null",
        "tags eq 't1'",
        "n/any(t: t eq 1)",
        "1 eq 1",
        "text eq ",
        "search.ismatch('x')",
        "(n eq 1",
    ]
)


@st.composite
def filters(draw: st.DrawFn, depth: int = 0) -> Gen:
    kind = draw(st.integers(0, 11 if depth < 4 else 4))
    if kind <= 2 or (kind == 4 and depth > 0):
        return draw(valid_atoms())
    if kind == 3:
        return Gen(draw(INVALID_ATOMS), INVALID)
    if kind == 4:
        return Gen(draw(st.text(alphabet="()/:,' abcdeqnotrl01.", max_size=30)), UNKNOWN)
    if kind in (5, 6):
        inner = draw(filters(depth + 1))
        return Gen(f"not ({inner.text})", inner.status, lambda d: not inner.pred(d))
    parts = draw(st.lists(filters(depth + 1), min_size=2, max_size=4))
    op = draw(st.sampled_from(["and", "or"]))
    status = VALID if all(p.status == VALID for p in parts) else UNKNOWN
    if status != VALID and not any(p.status == UNKNOWN for p in parts):
        status = INVALID
    combine = all if op == "and" else any
    return Gen(
        f" {op} ".join(f"({p.text})" for p in parts), status, lambda d: combine(p.pred(d) for p in parts)
    )


@FUZZ
@given(flt=filters(), as_user=st.booleans())
def test_fuzzed_filters(poster: Poster, flt: Gen, as_user: bool) -> None:
    oid = U1 if as_user else None
    response = poster.search(
        {"search": "*", "filter": flt.text, "count": True, "top": 1000, "select": "id"}, oid
    )
    if flt.status == INVALID:
        assert response.status_code == 400, flt.text
    elif flt.status == VALID:
        assert response.status_code == 200, (flt.text, response.text)
        body = response.json()
        expected = {d["id"] for d in DOCS if d["id"] in readable(oid) and flt.pred(d)}
        assert {r["id"] for r in body["value"]} == expected, flt.text
        assert body["@odata.count"] == len(expected)


@FUZZ
@given(text=st.text(alphabet="()/:,' abcdeqnotrl01.*-", max_size=40), as_user=st.booleans())
def test_fuzzed_filter_text(poster: Poster, text: str, as_user: bool) -> None:
    """Random filter text: a 400, or a 200 within what the caller may read (checked by ``Poster.search``)."""
    poster.search({"search": "*", "filter": text, "top": 1000, "select": "id"}, U1 if as_user else None)


@pytest.mark.parametrize(
    ("text", "pred"),
    [
        ("tags/any()", lambda d: bool(d["tags"])),
        ("not tags/any()", lambda d: not d["tags"]),
        ("tags/any(t: t ne 't1')", lambda d: any(t != "t1" for t in d["tags"] or [])),
        ("tags/all(t: t eq 't1')", lambda d: all(t == "t1" for t in d["tags"] or [])),
    ],
)
def test_null_and_empty_collections_are_empty_to_lambdas(
    poster: Poster, text: str, pred: Callable[[dict[str, Any]], bool]
) -> None:
    body = poster.search({"search": "*", "filter": text, "top": 1000, "select": "id"}, U1).json()
    assert {r["id"] for r in body["value"]} == {d["id"] for d in DOCS if d["id"] in readable(U1) and pred(d)}


# ---- text queries -------------------------------------------------------------------------------------------------

QUERY_ALPHABET = st.sampled_from(
    list("abcw0123 \"'()+|-*\\~:^/!?&{}[]") + ["word1", "shared", "text", "é", "\u0301"]
)


@FUZZ
@given(
    text=st.lists(QUERY_ALPHABET, max_size=25).map("".join),
    mode=st.sampled_from(["any", "all"]),
    fields=st.sampled_from([None, "text", "id", "text,cat", "cat", "nope"]),
    as_user=st.booleans(),
)
def test_fuzzed_queries(poster: Poster, text: str, mode: str, fields: str | None, as_user: bool) -> None:
    body: dict[str, Any] = {"search": text, "searchMode": mode, "count": True, "top": 1000, "select": "id"}
    if fields:
        body["searchFields"] = fields
    response = poster.search(body, U1 if as_user else None)
    if response.status_code == 200:
        payload = response.json()
        assert payload["@odata.count"] == len(payload["value"])


TERMS = st.sampled_from(["word1", "word2", "shared", "text", "a", "b", "t1", "zzz", "wor*", "tex*", "sha*"])


@FUZZ
@given(
    terms=st.lists(TERMS, min_size=1, max_size=5), mode=st.sampled_from(["any", "all"]), as_user=st.booleans()
)
def test_fuzzed_plain_term_queries_match_the_reference(
    poster: Poster, terms: list[str], mode: str, as_user: bool
) -> None:
    """Plain terms and prefixes (no other operator): OR of them in 'any' mode, AND in 'all' mode."""
    oid = U1 if as_user else None

    def matches(doc: dict[str, Any], term: str) -> bool:
        if term.endswith("*"):
            return has_prefix(doc, term[:-1], SEARCHABLE)
        return has_any_word(doc, words(term), SEARCHABLE)

    combine = any if mode == "any" else all
    expected = {d["id"] for d in DOCS if d["id"] in readable(oid) and combine(matches(d, t) for t in terms)}
    body = {"search": " ".join(terms), "searchMode": mode, "count": True, "top": 1000, "select": "id"}
    payload = poster.search(body, oid).json()
    assert {r["id"] for r in payload["value"]} == expected
    assert payload["@odata.count"] == len(expected)


# ---- ordering and paging ----------------------------------------------------------------------------------------

FIELDS = st.sampled_from(["id", "text", "cat", "n", "x", "ok", "tags", "uids", "nope", "t", "search.score()"])
SORTABLE = {"id", "text", "cat", "n", "x", "ok"}  # every sortable field


def _sort_key(doc: dict[str, Any], field: str) -> tuple[int, Any]:
    value = doc[field]
    return (0, "") if value is None else (1, value)  # null sorts first ascending (SQLite's order)


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
    if poster.search(body, U1).status_code != 200:
        return
    # Accepted: the same page with the sort keys visible is ordered by them, of the right size, and counted right.
    checked = {**body, "select": "id,cat,n", "count": True}
    payload = poster.search(checked, U1).json()
    rows = payload["value"]
    total = len(readable(U1))  # every document has "shared"
    assert payload["@odata.count"] == total
    assert len(rows) == max(0, min(50 if top is None else min(top, 1000), total - (skip or 0)))
    docs = {d["id"]: d for d in DOCS}
    keys: list[tuple[str, bool]] = []
    for clause in orderby.split(",") if orderby else []:
        field, _, direction = clause.strip().partition(" ")
        if field not in SORTABLE:  # search.score(): the order after it is not known here
            break
        keys.append((field, direction.strip() == "desc"))
    for a, b in zip(rows, rows[1:], strict=False):
        for field, desc in keys:
            ka, kb = _sort_key(docs[a["id"]], field), _sort_key(docs[b["id"]], field)
            if ka != kb:
                assert (ka > kb) if desc else (ka < kb), (orderby, a, b)
                break


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
    ),
    as_user=st.booleans(),
)
def test_fuzzed_body_types(poster: Poster, body: dict[str, Any], as_user: bool) -> None:
    poster.search(body, U1 if as_user else None)
