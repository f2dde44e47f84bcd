"""The results pane's "why you can see it": from the access entries, or the server's own "unknown" reason."""

from __future__ import annotations

from console.ui.widgets.results_pane import visibility_reasons


def test_a_group_entry_of_the_caller_names_the_group() -> None:
    document = {
        "oid": [],
        "group": ["g1"],
        "visible_because": [{"field": "group", "value": "g1", "reason": "group"}],
    }
    assert visibility_reasons(
        document, {"oid": "me", "groups": ["g1"], "group_names": {"g1": "Finance"}}
    ) == ["you are in group Finance"]


def test_the_servers_unknown_reason_is_shown_with_its_cause() -> None:
    because = [
        {"field": "group", "value": None, "reason": "unknown", "detail": "Microsoft Graph answered HTTP 503"}
    ]
    document = {"oid": [], "group": [], "visible_because": because}
    assert visibility_reasons(document, {"oid": "me", "groups": None}) == [
        "reason unknown: Microsoft Graph answered HTTP 503"
    ]
    assert visibility_reasons({"oid": [], "group": []}, {"oid": "me"}) == [
        "admitted by the search service (no matching entry returned)"
    ]
