"""Filter size and nesting at the search service: long flat chains and deep nesting give the reference result up to
the documented limits (on every route a query can take) and Azure's "Invalid expression" refusal past them; and the
record of user-token audiences stays bounded however many distinct ones arrive."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from mcp_server.localcloud.search.app import AudienceCounter
from tests.search.reference import F, all_with, any_with, chain, cmp, not_, search_in
from tests.security.search_env import (
    U1,
    U2,
    U3,
    Env,
    azure_error,
    env_fixture,  # noqa: F401 (the module's service and index)
    filter_error,
)

DEPTH = filter_error(
    "Recursion depth exceeded allowed limit. The filter nests parentheses, 'not' and any/all more than 32 "
    "levels deep; write it with fewer levels."
)
LAMBDAS = filter_error(
    "Recursion depth exceeded allowed limit. The filter nests any/all more than 4 levels deep."
)
CLAUSES = filter_error(
    "Recursion depth exceeded allowed limit. The filter has more than 500 clauses; to test one field against "
    "many values, use search.in(field, 'value1,value2,...') instead of a chain of 'or'."
)
OIDS = [None, U1, U2, U3]
# The routes a query takes: ACL-driven merge (match-all, natural or key order), ACL set probe (other order),
# full-text driven with the ACL probed per candidate, and a text query with negation (the general SQL form).
ROUTES: list[dict[str, object]] = [
    {"search": "*"},
    {"search": "*", "orderby": "id desc"},
    {"search": "*", "orderby": "n desc"},
    {"search": "drop table"},
    {"search": "drop* -river", "searchMode": "all"},
]


def _check(env: Env, flt: F, oids: list[str | None] = OIDS) -> None:
    """The service's answer equals the reference on every route, for every caller, count included."""
    for oid in oids:
        for route in ROUTES:
            ids, count = env.raw_ids({**route, "filter": flt.text}, oid)
            if route["search"] == "*":
                assert ids == env.expect(flt, oid), (route, oid)
            else:
                assert ids <= env.expect(flt, oid), (route, oid)
            assert count == len(ids)


def ne_chain(n: int) -> F:
    return chain("and", [cmp("n", "ne", i) for i in range(n)])


@pytest.mark.parametrize("clauses", [84, 85, 200, 500])
def test_long_and_chains_give_the_reference_result(env: Env, clauses: int) -> None:
    """83 'and's overflowed SQLite's parser before; now up to 500 clauses answer (here: n not in 0..clauses-1)."""
    flt = ne_chain(clauses)
    _check(env, flt)
    assert env.sdk_ids("*", U1, filter=flt.text) == env.expect(flt, U1)


def test_long_or_chains_and_many_search_in_calls(env: Env) -> None:
    _check(env, chain("or", [cmp("n", "eq", i) for i in range(0, 1000, 2)]))  # 500 clauses
    _check(env, chain("or", [search_in("cat", ["red", f"v{i}"]) for i in range(500)]), [U1, U3])


def test_a_user_in_sixty_groups_with_a_long_filter(env: Env) -> None:
    """61 principals x 1,000 bound values would pass SQLite's 32,766 parameters on the merge route."""
    flt = chain(
        "and", [cmp("n", "ne", i) for i in range(250)] + [cmp("cat", "ne", f"c{i}") for i in range(250)]
    )
    for route in ROUTES[:2]:
        ids, count = env.raw_ids({**route, "filter": flt.text}, U3)
        assert ids == env.expect(flt, U3) and count == len(ids)


def _nots(k: int) -> F:
    flt = cmp("ok", "eq", True)
    for _ in range(k):
        flt = not_(flt, parens=False)
    return flt


@pytest.mark.parametrize("k", [1, 2, 31, 32])
def test_not_chains_up_to_the_limit(env: Env, k: int) -> None:
    _check(env, _nots(k), [U1])


@pytest.mark.parametrize("k", [33, 42, 300])
def test_not_chains_past_the_limit_are_refused(env: Env, k: int) -> None:
    azure_error(env.post({"search": "*", "filter": _nots(k).text}, U1), 400, DEPTH)


def _lambdas(k: int) -> F:
    """k nested any() over tags, each also true when its element is 't2'."""
    inner = cmp("n", "ge", 60)
    for i in reversed(range(k)):
        var = f"v{i}"
        prev = inner
        inner = any_with(
            "tags", var, f"{var} eq 't2' or ({prev.text})", lambda v, d, p=prev: v == "t2" or p.pred(d)
        )
    return inner


@pytest.mark.parametrize("k", [1, 4])
def test_nested_lambdas_up_to_the_limit(env: Env, k: int) -> None:
    _check(env, _lambdas(k), [None, U1])


@pytest.mark.parametrize("k", [5, 12, 13])
def test_nested_lambdas_past_the_limit_are_refused(env: Env, k: int) -> None:
    azure_error(env.post({"search": "*", "filter": _lambdas(k).text}, U1), 400, LAMBDAS)


def _alternating(levels: int, leaf: F, width: int = 1) -> F:
    """``not (c1 and/or … and/or <inner>)`` nested ``levels`` times around ``leaf`` (an atom): two nesting levels
    each (``not``, the parenthesis; the inner ``not (…)`` needs none of its own). ``width`` clauses per level."""
    flt = leaf
    for i in range(levels):
        op = "or" if i % 2 else "and"
        parts = [cmp("n", "ne", 1000 + i * width + j) for j in range(width - 1)] + [cmp("n", "ge", i)]
        flt = not_(chain(op, [*parts, flt]))
    return flt


def _all_levels(k: int, inner: F) -> F:
    """k nested ``tags/all(w: w ne 'zz' and not (…))``: three nesting levels each (lambda, not, parenthesis)."""
    for i in reversed(range(k)):
        var, prev = f"w{i}", inner
        inner = all_with(
            "tags",
            var,
            f"{var} ne 'zz' and not ({prev.text})",
            lambda v, d, p=prev: v != "zz" and not p.pred(d),  # type: ignore[misc]
        )
    return inner


WORST: dict[str, Callable[[], F]] = {
    # exactly 32 levels each: the deepest SQL each construction produces within the limits
    "4 all() (3 levels each) around 10 x (not, parenthesis)": lambda: _all_levels(
        4, _alternating(10, search_in("cat", ["red", "x"]))
    ),
    "10 x (not, parenthesis) around 4 all()": lambda: _alternating(
        10, _all_levels(4, cmp("ok", "eq", False))
    ),
    "16 x (not, parenthesis)": lambda: _alternating(16, cmp("n", "lt", 100)),
    "16 x (not, parenthesis), 30 clauses each": lambda: _alternating(16, cmp("n", "le", 110), width=30),
    "31 parentheses around 400 clauses": lambda: F(
        "(" * 31 + ne_chain(400).text + ")" * 31, ne_chain(400).pred
    ),
}


@pytest.mark.parametrize("name", list(WORST))
def test_the_deepest_filters_within_the_limits_answer_on_every_route(env: Env, name: str) -> None:
    flt = WORST[name]()
    assert flt.text.count(" eq ") + flt.text.count(" ne ") + flt.text.count(" ge ") <= 500
    _check(env, flt)
    # One level more is refused, not overflowed.
    deeper = f"not ({flt.text})"
    azure_error(env.post({"search": "*", "filter": deeper}, U1), 400, DEPTH)


def test_filter_length_limit(env: Env) -> None:
    head = "cat eq '"
    at_limit = head + "x" * (100_000 - len(head) - 1) + "'"
    assert len(at_limit) == 100_000
    assert env.raw_ids({"search": "*", "filter": at_limit}, U1)[0] == set()
    azure_error(
        env.post({"search": "*", "filter": at_limit + " "}, U1),
        400,
        filter_error("The filter expression is too long: 100,001 characters, at most 100,000 are allowed."),
    )


def test_over_limit_clauses_are_refused_on_both_routes(env: Env) -> None:
    text = ne_chain(501).text
    azure_error(env.post({"search": "*", "filter": text}, U1), 400, CLAUSES)
    # GET carries a filter in the URL (Azure: 8 KB); a long one still gets the same refusal, not a crash.
    get = env.session.get(
        f"{env.service.endpoint}/indexes/hostile/docs",
        params={
            "api-version": "2026-04-01",
            "search": "*",
            "$filter": chain("or", [cmp("n", "eq", 1)] * 501).text,
        },
    )
    azure_error(get, 400, CLAUSES)
    azure_error(env.post({"search": "*", "filter": "(" * 33 + "ok" + ")" * 33}, U1), 400, DEPTH)


# ---- the record of audiences ------------------------------------------------------------------------------------


def test_audience_record_is_bounded(env: Env) -> None:
    """Each user token is counted under its (unverified) audience; new audiences past the cap, and absurdly long
    ones, count as "(other)", so a flood of distinct audiences cannot grow the service's memory."""
    before = env.service.audiences_seen

    def send(token: str) -> None:
        headers = {"x-ms-query-source-authorization": token}
        assert env.session.post(env.url, json={"search": "*"}, headers=headers, timeout=10).status_code == 401

    send("junk")  # not a JWT: counted under None
    for i in range(100):
        send(env.signer.token(U1, aud=f"api://flood-{i}"))
    send(env.signer.token(U1, aud="x" * 300))
    after = env.service.audiences_seen
    assert len(after) == 32 + 1  # the cap, and "(other)"
    assert sum(after.values()) - sum(before.values()) == 102
    assert after[None] - before.get(None, 0) == 1
    assert after[AudienceCounter.OTHER] == 102 - (32 - len(before) - 1) - 1
    assert max(len(k) for k in after if k) <= 256


def test_audience_counter_counts_per_audience() -> None:
    counter = AudienceCounter(max_audiences=3)
    for aud in ["a", "b", "a", ["c", "d"], "e", "f" * 300, None, "a"]:
        counter.add(aud)
    assert counter.snapshot() == {"a": 3, "b": 1, "c d": 1, AudienceCounter.OTHER: 3}
