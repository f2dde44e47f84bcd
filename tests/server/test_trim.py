"""trim_document: whatever a document's access fields hold, the caller sees only the entries that admit them."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from mcp_server.server.documents import trim_document

IDS = st.sampled_from(["me", "you", "them", "g1", "g2", "g3", "all", "none"])
FIELDS = ("id", "name", "oid", "group")


@given(
    oids=st.lists(IDS, max_size=6),
    groups=st.lists(IDS, max_size=6),
    mine=st.sets(st.sampled_from(["g1", "g2"])),
)
def test_only_admitting_entries_survive(oids: list[str], groups: list[str], mine: set[str]) -> None:
    raw = {"id": "1", "name": "n", "oid": oids, "group": groups, "secret": "x", "@search.score": 2.5}
    doc = trim_document(raw, FIELDS, "me", mine)
    assert set(doc["oid"]) <= {"me", "all"} and set(doc["group"]) <= mine | {"all"}
    assert [v for v in oids if v in ("me", "all")] == doc["oid"]
    assert [v for v in groups if v in mine | {"all"}] == doc["group"]
    assert "secret" not in doc and doc["score"] == 2.5 and doc["name"] == "n"
    reasons = {(r["field"], r["value"]) for r in doc["visible_because"]}
    assert reasons == {("oid", v) for v in doc["oid"]} | {("group", v) for v in doc["group"]}


def test_single_string_access_fields_and_missing_fields() -> None:
    doc = trim_document({"oid": "me", "group": None}, FIELDS, "me", [])
    assert doc["oid"] == ["me"] and doc["group"] == [] and doc["id"] is None
    assert doc["visible_because"] == [{"field": "oid", "value": "me", "reason": "user"}]
