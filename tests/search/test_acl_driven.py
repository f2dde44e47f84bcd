"""Trimmed match-all (``*``) queries, which the store drives from the ACL side: every page, order, filter and count
equals what the test computes itself from the documents' permission fields — the unfiltered result restricted to
the documents the user may read — including on a database written with the older ACL layout (migrated on open)."""

from __future__ import annotations

import random
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from mcp_server.localcloud.search.errors import SearchError
from mcp_server.localcloud.search.query_plan import MAX_MERGED_PRINCIPALS
from mcp_server.localcloud.search.request import SearchParams
from mcp_server.localcloud.search.store import QueryIdentity, SearchStore

INDEX = "acl-driven"
TENANT = "11111111-2222-3333-4444-555555555555"
USERS = [f"u{i:02d}" for i in range(20)]
GROUPS = [f"g{i:02d}" for i in range(MAX_MERGED_PRINCIPALS + 16)]
CATEGORIES = ["alpha", "beta", "gamma"]


def _definition(enabled: bool) -> dict[str, Any]:
    return {
        "name": INDEX,
        "fields": [
            {"name": "id", "type": "Edm.String", "key": True, "sortable": True, "filterable": True},
            {"name": "category", "type": "Edm.String", "filterable": True, "sortable": True},
            {"name": "rank", "type": "Edm.Int32", "filterable": True, "sortable": True},
            {"name": "content", "type": "Edm.String", "searchable": True},
            {
                "name": "oid",
                "type": "Collection(Edm.String)",
                "filterable": True,
                "permissionFilter": "userIds",
            },
            {
                "name": "grp",
                "type": "Collection(Edm.String)",
                "filterable": True,
                "permissionFilter": "groupIds",
            },
        ],
        "permissionFilterOption": "enabled" if enabled else "disabled",
    }


def _documents(rng: random.Random) -> list[dict[str, Any]]:
    """Keys in random order (so key order is not insertion order), a mix of readers, some public, some nobody's,
    and look-alikes of ``all`` that must not make a document public."""
    keys = [f"k{i:03d}" for i in range(240)]
    rng.shuffle(keys)
    docs = []
    for n, key in enumerate(keys):
        roll = rng.random()
        oid: list[str] = rng.sample(USERS, rng.randint(0, 2))
        if roll < 0.08:
            oid.append("all")
        elif roll < 0.11:
            oid.append(rng.choice(["ALL", " all", "none"]))
        docs.append(
            {
                "id": key,
                "category": rng.choice(CATEGORIES) if n % 7 else None,
                "rank": rng.randint(0, 9),
                "content": "text",
                "oid": oid,
                "grp": rng.sample(GROUPS, rng.randint(0, 2)),
            }
        )
    return docs


def _visible(doc: dict[str, Any], who: QueryIdentity | None) -> bool:
    values = [*(doc.get("oid") or []), *(doc.get("grp") or [])]
    if "all" in values:
        return True
    if who is None:
        return False
    return who.oid in (doc.get("oid") or []) or any(g in (doc.get("grp") or []) for g in who.groups)


FILTERS: dict[str | None, Callable[[dict[str, Any]], bool]] = {
    None: lambda d: True,
    "category eq 'beta'": lambda d: d["category"] == "beta",
    "rank gt 4 and category ne 'gamma'": lambda d: d["rank"] > 4 and d["category"] != "gamma",
    "grp/any(g: g eq 'g03')": lambda d: "g03" in d["grp"],
}
ORDERS = [None, "id asc", "id desc", "search.score() desc, id desc", "rank desc", "category asc, id desc"]
PAGES = [(None, 0), (50, 0), (7, 3), (10, 200), (0, 0), (1000, 0)]


class Corpus:
    def __init__(self, store: SearchStore, docs: dict[str, dict[str, Any]]) -> None:
        self.store = store
        self.docs = docs

    def ids(self, params: SearchParams, who: QueryIdentity | None) -> tuple[list[str], int | None, bool]:
        page = self.store.search(INDEX, params, who)
        return [r["id"] for r in page.rows], page.count, page.next_params is not None

    def unfiltered_order(self, orderby: str | None, filter_: str | None) -> list[str]:
        """Every document the filter admits, in the order the unfiltered index returns them."""
        self.store.create_or_update_index(INDEX, _definition(False))
        try:
            out: list[str] = []
            while True:
                params = SearchParams(search="*", orderby=orderby, filter=filter_, top=1000, skip=len(out))
                ids = self.ids(params, None)[0]
                out.extend(ids)
                if len(ids) < 1000:
                    return out
        finally:
            self.store.create_or_update_index(INDEX, _definition(True))


def _identities(rng: random.Random) -> list[QueryIdentity | None]:
    many = QueryIdentity(TENANT, "u01", tuple(GROUPS[: MAX_MERGED_PRINCIPALS + 8]))  # past the merge's limit
    few = [QueryIdentity(TENANT, u, tuple(rng.sample(GROUPS, rng.randint(0, 4)))) for u in USERS[:6]]
    stranger = QueryIdentity(TENANT, "nobody-at-all", ("no-such-group",))
    return [None, stranger, many, *few]


def _build(path: Path) -> tuple[SearchStore, dict[str, dict[str, Any]]]:
    rng = random.Random(20261126)
    store = SearchStore(path)
    store.create_index(_definition(True))
    docs = _documents(rng)
    store.index_documents(INDEX, [{"@search.action": "upload", **d} for d in docs])
    current = {d["id"]: d for d in docs}
    # Later changes: readers replaced by merge, documents deleted and re-uploaded (new ids, old keys).
    changes: list[dict[str, Any]] = []
    for key in rng.sample(sorted(current), 40):
        new = {"oid": rng.sample(USERS, 1), "grp": rng.sample(GROUPS, rng.randint(0, 1))}
        current[key] = {**current[key], **new}
        changes.append({"@search.action": "merge", "id": key, **new})
    for key in rng.sample(sorted(current), 20):
        del current[key]
        changes.append({"@search.action": "delete", "id": key})
    store.index_documents(INDEX, changes)
    again = [d for d in docs if d["id"] not in current][:10]
    store.index_documents(INDEX, [{"@search.action": "mergeOrUpload", **d} for d in again])
    current.update({d["id"]: d for d in again})
    return store, current


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Corpus]:
    store, docs = _build(Path(tmp_path_factory.mktemp("acl-driven")))
    try:
        yield Corpus(store, docs)
    finally:
        store.close()


def _check(corpus: Corpus, who: QueryIdentity | None, orderby: str | None, filter_: str | None) -> None:
    reference = corpus.unfiltered_order(orderby, filter_)
    expected = [k for k in reference if _visible(corpus.docs[k], who)]
    # Independent of the service: what the filter and the permissions admit, and the key order.
    admitted = {k for k, d in corpus.docs.items() if FILTERS[filter_](d) and _visible(d, who)}
    assert set(expected) == admitted
    if orderby in ("id asc", "id desc", "search.score() desc, id desc"):
        assert expected == sorted(admitted, reverse=orderby != "id asc")
    for top, skip in PAGES:
        params = SearchParams(search="*", orderby=orderby, filter=filter_, top=top, skip=skip, count=True)
        ids, count, more = corpus.ids(params, who)
        size = 50 if top is None else top
        assert ids == expected[skip : skip + size], (who, orderby, filter_, top, skip)
        assert count == len(expected)
        assert more == (top is None and len(expected) > skip + size)


def test_trimmed_match_all_is_the_unfiltered_result_restricted_to_the_reader(corpus: Corpus) -> None:
    identities = _identities(random.Random(5))
    for who in identities:
        for orderby in ORDERS:
            _check(corpus, who, orderby, None)
    for filter_ in FILTERS:
        for orderby in ("id asc", None, "rank desc"):
            for who in identities[:4]:
                _check(corpus, who, orderby, filter_)


def test_the_expectations_are_not_trivial(corpus: Corpus) -> None:
    identities = _identities(random.Random(5))
    seen = [sum(_visible(d, who) for d in corpus.docs.values()) for who in identities]
    public = sum(_visible(d, None) for d in corpus.docs.values())
    assert 0 < public < min(seen[2:]) and max(seen) < len(corpus.docs)
    assert seen[1] == public  # a stranger reads the public documents only


def test_get_by_key_is_trimmed_as_before(corpus: Corpus) -> None:
    for who in _identities(random.Random(5)):
        for key, doc in corpus.docs.items():
            if _visible(doc, who):
                assert corpus.store.get_document(INDEX, key, None, who)["id"] == key
            else:
                with pytest.raises(SearchError):
                    corpus.store.get_document(INDEX, key, None, who)


def _downgrade(path: Path) -> None:
    """Lay the ACL out as older versions did: ``acl_N(doc, principal)`` alone, no by-principal index or key table."""
    conn = sqlite3.connect(path / "search.sqlite3", isolation_level=None)
    try:
        (index_id,) = conn.execute("SELECT id FROM indexes WHERE name = ?", (INDEX,)).fetchone()
        conn.execute(f"DROP INDEX acl_{index_id}_by_doc")
        conn.execute(f"DROP TABLE aclkey_{index_id}")
        names = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
        assert f"acl_{index_id}" in names and not {n for n in names if n.startswith("aclkey_")}
    finally:
        conn.close()


def test_a_database_with_the_old_acl_layout_is_migrated_on_open(tmp_path: Path) -> None:
    store, docs = _build(tmp_path)
    store.close()
    _downgrade(tmp_path)
    migrated = SearchStore(tmp_path)
    try:
        corpus = Corpus(migrated, docs)
        identities = _identities(random.Random(5))
        for who in identities:
            _check(corpus, who, "id asc", None)
            _check(corpus, who, None, "category eq 'beta'")
        # Writes after the migration keep the ACL in step.
        key = next(k for k, d in sorted(docs.items()) if not _visible(d, None))
        result = migrated.index_documents(INDEX, [{"@search.action": "merge", "id": key, "oid": ["all"]}])
        assert result[0]["status"] is True
        docs[key] = {**docs[key], "oid": ["all"]}
        for who in identities[:3]:
            _check(corpus, who, "id desc", None)
    finally:
        migrated.close()
    reopened = SearchStore(tmp_path)  # a second open finds nothing to migrate and still answers the same
    try:
        _check(Corpus(reopened, docs), _identities(random.Random(5))[3], "id asc", None)
    finally:
        reopened.close()


def test_a_schema_update_that_rebuilds_the_derived_tables_keeps_the_acl_in_step(tmp_path: Path) -> None:
    store, docs = _build(tmp_path)
    try:
        extended = _definition(True)
        extended["fields"] = [
            *extended["fields"],
            {"name": "notes", "type": "Edm.String", "searchable": True},
        ]
        store.create_or_update_index(INDEX, extended)  # a new searchable field: FTS and ACL are re-derived
        corpus = Corpus(store, docs)
        for who in _identities(random.Random(5))[:4]:
            expected = sorted(k for k, d in docs.items() if _visible(d, who))
            for orderby, want in (("id asc", expected), ("id desc", expected[::-1])):
                page = store.search(
                    INDEX, SearchParams(search="*", orderby=orderby, top=1000, count=True), who
                )
                assert [r["id"] for r in page.rows] == want and page.count == len(want)
            assert sorted(corpus.ids(SearchParams(search="*", top=1000), who)[0]) == expected
    finally:
        store.close()
