"""Hostile requests to the local search service: tokens that carry no user (or a bad one) in
``x-ms-query-source-authorization``, and injection attempts in every string a query carries. Each case ends in the
reference result (and never a document the caller may not read) or in Azure's exact refusal; never a 5xx.

Filter size limits and the audience record are in ``test_search_limits.py``; the index is ``search_env.py``'s.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import jwt
import pytest
import requests
from azure.core.credentials import AzureKeyCredential
from azure.core.exceptions import ClientAuthenticationError
from azure.search.documents import SearchClient

from mcp_server.localcloud.identity.platform import IdentityPlatform
from mcp_server.localcloud.search.service import SearchService
from tests.identity.helpers import api_app
from tests.search.reference import (
    F,
    any_eq,
    cmp,
    has_any_word,
    has_phrase,
    has_prefix,
    not_,
    search_in,
    visible,
    words,
)
from tests.security.search_env import (
    DOCS,
    GROUPS,
    HOSTILE,
    U1,
    U2,
    U3,
    Env,
    azure_error,
    env_fixture,  # noqa: F401 (the module's service and index)
    filter_error,
)

SEARCH = "https://search.azure.com"
APP_ONLY = (
    "The query source authorization token carries no user: it is an application (app-only) token. Send the "
    "signed-in user's delegated token for https://search.azure.com (for example from the on-behalf-of flow)."
)
NO_SCOPE = (
    "The query source authorization token does not grant the 'user_impersonation' scope of Azure AI Search; "
    "request https://search.azure.com/.default for the user."
)
# What alice reads in the demo index (docs/search.md).
ALICE_DOCS = {f"doc-{n:02d}" for n in (1, 2, 3, 6, 7, 8, 9, 11, 12, 14, 15)}


# ---- tokens that carry no user ----------------------------------------------------------------------------------


API = "2026-08-01-preview"
Mint = Callable[[IdentityPlatform], str]
Demo = tuple[SearchClient, requests.Session, str]


@pytest.fixture(scope="module")
def demo(search_service: SearchService, demo_search_index: str) -> Iterator[Demo]:
    """The session's search service (trusting the identity platform) with the demo index: SDK, raw session, URL."""
    key = search_service.api_key.get_secret_value()
    client = SearchClient(search_service.endpoint, demo_search_index, AzureKeyCredential(key))
    session = requests.Session()
    session.trust_env = False
    session.headers["api-key"] = key
    url = (
        f"{search_service.endpoint}/indexes('{demo_search_index}')/docs/search.post.search?api-version={API}"
    )
    yield client, session, url
    session.close()
    client.close()


def _app(**extra: Any) -> Mint:
    return lambda p: p.issue_app_token(audience=SEARCH, extra_claims=extra or None)


def _alice(scopes: tuple[str, ...] = ("user_impersonation",), **extra: Any) -> Mint:
    return lambda p: p.issue_access_token("alice", audience=SEARCH, scopes=scopes, extra_claims=extra or None)


NO_USER_TOKENS: dict[str, tuple[Mint, str]] = {
    "client credentials (idtyp app, no scp)": (_app(), APP_ONLY),
    "app token with a forged scp": (_app(scp="user_impersonation"), APP_ONLY),
    "app token without idtyp": (_app(idtyp=None), APP_ONLY),
    "app token without idtyp, with scp (sub is its oid)": (
        _app(idtyp=None, scp="user_impersonation"),
        APP_ONLY,
    ),
    "user token marked idtyp app": (_alice(idtyp="app"), APP_ONLY),
    "user token without scp": (_alice(scp=None), APP_ONLY),
    "user token with scp as a list": (_alice(scp=["user_impersonation"]), APP_ONLY),
    "user token whose sub is its oid": (
        lambda p: _alice(sub=p.user("alice").oid)(p),
        APP_ONLY,
    ),
    "user token with an empty scp": (_alice(scp=""), NO_SCOPE),
    "user token for another scope": (_alice(scopes=("Files.Read",)), NO_SCOPE),
}


@pytest.mark.parametrize("case", list(NO_USER_TOKENS))
def test_tokens_without_a_user_are_refused(
    case: str, identity_platform: IdentityPlatform, demo: Demo
) -> None:
    client, session, url = demo
    mint, message = NO_USER_TOKENS[case]
    token = mint(identity_platform)
    response = session.post(url, json={"search": "*"}, headers={"x-ms-query-source-authorization": token})
    azure_error(response, 401, message)
    # The real SDK sees the same refusal, for search and for get-by-key (public documents included).
    with pytest.raises(ClientAuthenticationError) as info:
        list(client.search("*", query_source_authorization=token))
    assert message in str(info.value.message)
    with pytest.raises(ClientAuthenticationError):
        client.get_document("doc-01", query_source_authorization=token)


def test_real_client_credentials_token_is_refused_and_real_obo_token_reads_alices_documents(
    identity_platform: IdentityPlatform,
    identity_http: requests.Session,
    demo: Demo,
) -> None:
    client, session, url = demo
    app = api_app(identity_platform, identity_http)
    app_token = app.acquire_token_for_client(scopes=[f"{SEARCH}/.default"])["access_token"]
    assert jwt.decode(app_token, options={"verify_signature": False})["idtyp"] == "app"
    azure_error(
        session.post(url, json={"search": "*"}, headers={"x-ms-query-source-authorization": app_token}),
        401,
        APP_ONLY,
    )
    # The same application, acting for alice through the on-behalf-of flow, gets her documents and no others.
    alice_api = identity_platform.issue_access_token("alice")
    obo = app.acquire_token_on_behalf_of(alice_api, scopes=[f"{SEARCH}/.default"])["access_token"]
    assert {r["id"] for r in client.search("*", query_source_authorization=obo)} == ALICE_DOCS
    explicit_user = _alice(idtyp="user")(identity_platform)
    assert {r["id"] for r in client.search("*", query_source_authorization=explicit_user)} == ALICE_DOCS


def _resign(claims: dict[str, Any], *, alg: str, key: Any, kid: str | None) -> str:
    headers = {"kid": kid} if kid else {}
    return jwt.encode(claims, key, algorithm=alg, headers=headers)


def _bad_tokens(p: IdentityPlatform) -> dict[str, tuple[str, str]]:
    """Tokens the service already refused before this change (kept here so it stays so): token -> message."""
    good = _alice()(p)
    claims = jwt.decode(good, options={"verify_signature": False})
    kid = jwt.get_unverified_header(good)["kid"]
    now = int(time.time())
    return {
        "forged signature": (
            p.issue_access_token(
                "alice", audience=SEARCH, scopes=["user_impersonation"], sign_with=p.forge_key()
            ),
            "Signature validation failed for the JWT token.",
        ),
        "unknown kid": (
            p.issue_access_token(
                "alice",
                audience=SEARCH,
                scopes=["user_impersonation"],
                sign_with=p.forge_key(kid="not-a-key"),
            ),
            "The JWT token's signing key (kid) is not one of the identity provider's keys.",
        ),
        "expired": (
            p.issue_access_token("alice", audience=SEARCH, scopes=["user_impersonation"], lifetime=-600),
            "The JWT token is expired.",
        ),
        "not yet valid": (_alice(nbf=now + 3600)(p), "The JWT token is not yet valid (nbf)."),
        "the API's own token": (p.issue_access_token("alice"), "Audience claim is invalid in the JWT token."),
        "another issuer": (
            _alice(iss="https://sts.windows.net/00000000-0000-0000-0000-000000000000/")(p),
            "Issuer claim is invalid in the JWT token.",
        ),
        "no oid": (_alice(oid=None)(p), "The JWT token has no 'oid' claim."),
        "no tid": (_alice(tid=None)(p), "The JWT token has no 'tid' claim."),
        "alg none": (
            _resign(claims, alg="none", key=None, kid=kid),
            "The JWT token must be signed with RS256.",
        ),
        "HS256 with a guessed secret": (
            _resign(claims, alg="HS256", key="secret" * 6, kid=kid),
            "The JWT token must be signed with RS256.",
        ),
        "not a JWT": (
            "'; DROP TABLE docs; --",
            "The query source authorization token is not a valid JWT token.",
        ),
        "an empty header": ("", "The x-ms-query-source-authorization header is empty."),
    }


def test_tokens_that_were_already_refused_stay_refused(
    identity_platform: IdentityPlatform, demo: Demo
) -> None:
    _, session, url = demo
    cases = _bad_tokens(identity_platform)
    for name, (token, message) in cases.items():
        response = session.post(url, json={"search": "*"}, headers={"x-ms-query-source-authorization": token})
        assert response.status_code == 401, name
        azure_error(response, 401, message)


# ---- injection: search text ------------------------------------------------------------------------------------


def _text_reference(query: str) -> Callable[[dict[str, Any]], bool]:
    """What a hostile search text means under the simple syntax, for the shapes used below: a phrase in quotes,
    a trailing ``*`` prefix, otherwise any of its words (OR is the default; AND/NOT words are not operators)."""
    stripped = query.strip()
    if stripped.startswith('"') and stripped.endswith('"') and stripped.count('"') == 2:
        tokens = words(stripped[1:-1])
        return lambda d: (
            has_phrase(d, tokens, ["text"]) if len(tokens) > 1 else has_any_word(d, tokens, ["text"])
        )
    if stripped.endswith("*") and len(words(stripped)) == 1:
        prefix = words(stripped)[0]
        return lambda d: has_prefix(d, prefix, ["text"])
    tokens = words(query)
    return lambda d: has_any_word(d, tokens, ["text"])


SEARCH_TEXTS = [
    "'; DROP TABLE docs_1; --",
    "drop AND table OR near",
    "NEAR(drop table, 2)",
    "{c0 c1} : drop",
    "c0 : drop",
    "drop\x00table",
    "\u202edrop\u202c",
    "dröp ﬁle",
    "DRÖP",
    "😀 union",
    "drop*",
    '"drop table"',
    '"select union"',
    "select) union (( docs",
    "x" * 100_000,
    " ".join(["drop"] * 1024),
]


@pytest.mark.parametrize("query", SEARCH_TEXTS, ids=lambda q: repr(q[:30]))
@pytest.mark.parametrize("oid", [None, U1, U3])
def test_hostile_search_text_matches_the_reference(env: Env, query: str, oid: str | None) -> None:
    meaning = _text_reference(query)
    groups = GROUPS.get(oid or "", [])
    expected = {d["id"] for d in DOCS if visible(d, oid, groups) and meaning(d)}
    assert env.sdk_ids(query, oid) == expected
    ids, count = env.raw_ids({"search": query}, oid)
    assert ids == expected and count == len(expected)


def test_hostile_search_text_refusals(env: Env) -> None:
    azure_error(
        env.post({"search": "x" * 100_001}),
        400,
        "The request is invalid. Details: 'search' is 100,001 characters long; at most 100,000 are allowed.",
    )
    azure_error(
        env.post({"search": " ".join(["drop"] * 1025)}), 400, "The search query has more than 1024 clauses."
    )
    azure_error(
        env.post({"search": "(" * 33 + "drop" + ")" * 33}),
        400,
        "The search query nests parentheses more than 32 levels deep; write it with fewer levels.",
    )


# ---- injection: $filter, $select, $orderby, searchFields -------------------------------------------------------


@pytest.mark.parametrize("value", HOSTILE, ids=repr)
@pytest.mark.parametrize("oid", [None, U1, U2])
def test_hostile_values_in_filter_literals_are_values(env: Env, value: str, oid: str | None) -> None:
    """Each hostile string, quoted as OData requires, finds exactly the documents holding it (and readable)."""
    for flt in (
        cmp("cat", "eq", value),
        not_(cmp("cat", "ne", value)),
        search_in("cat", [value, "red"], "|") if "|" not in value else search_in("cat", [value], "#"),
        any_eq("tags", "t", value),
    ):
        expected = env.expect(flt, oid)
        assert env.sdk_ids("*", oid, filter=flt.text) == expected, flt.text
    assert env.expect(cmp("cat", "eq", value), None) <= {d["id"] for d in DOCS if d["cat"] == value}


RAW_FILTERS = {
    # unescaped quote: the literal ends early and the rest is a syntax error
    "cat eq 'x' or 1 eq 1 or cat eq 'x'": "A comparison must have a field or range variable on at least one side.",
    "cat eq ''; DROP TABLE docs_1; --'": "Syntax error at position 9 in 'cat eq ''; DROP TABLE docs_1; --''.",
    "cat eq 'a' --": "Syntax error at position 11 in 'cat eq 'a' --'.",
    'cat eq "a"': "Syntax error at position 7 in 'cat eq \"a\"'.",
    "n eq 1; DROP TABLE docs_1": "Syntax error at position 6 in 'n eq 1; DROP TABLE docs_1'.",
    "json_extract(body, '$.uids') ne null": "Could not find a property named 'json_extract' on type 'search.document'.",
    "uids/any(u: u eq 'all') or 1 eq 1": "A comparison must have a field or range variable on at least one side.",
    "search.ismatch('drop')": "The function 'search.ismatch' is not supported in $filter by the local search service.",
    "search.ismatchscoring('drop')": "The function 'search.ismatchscoring' is not supported in $filter by the local search service.",
}


@pytest.mark.parametrize("text", list(RAW_FILTERS), ids=repr)
def test_malformed_hostile_filters_are_refused(env: Env, text: str) -> None:
    azure_error(env.post({"search": "*", "filter": text}, U1), 400, filter_error(RAW_FILTERS[text]))
    get = env.session.get(
        f"{env.service.endpoint}/indexes/hostile/docs",
        params={"api-version": API, "search": "*", "$filter": text},
    )
    azure_error(get, 400, filter_error(RAW_FILTERS[text]))


TRICKY_VALID_FILTERS = [
    # '' inside a literal is an escaped quote: these are single string values, not code
    F("cat eq '''; DROP TABLE docs_1; --'", lambda d: d["cat"] == "'; DROP TABLE docs_1; --"),
    F("cat eq 'x'' or 1 eq 1 or cat eq ''x'", lambda d: d["cat"] == "x' or 1 eq 1 or cat eq 'x"),
    F("cat eq 'a\u0000' or true", lambda d: True),
    F("cat eq 'a\u0000b'", lambda d: False),  # the stored value has U+0001 there
    F(
        "search.in(cat, '''; DROP TABLE docs_1; --|red', '|')",
        lambda d: d["cat"] in ("'; DROP TABLE docs_1; --", "red"),
    ),
]


@pytest.mark.parametrize("flt", TRICKY_VALID_FILTERS, ids=lambda f: repr(f.text))
@pytest.mark.parametrize("oid", [None, U1, U3])
def test_filters_that_look_hostile_but_are_valid_match_the_reference(
    env: Env, flt: F, oid: str | None
) -> None:
    ids, count = env.raw_ids({"search": "*", "filter": flt.text}, oid)
    assert ids == env.expect(flt, oid) and count == len(ids)


def test_documents_with_nul_characters_are_refused(env: Env) -> None:
    response = env.session.post(
        f"{env.service.endpoint}/indexes/hostile/docs/index?api-version={API}",
        json={"value": [{"id": "nul", "cat": "a\u0000b", "uids": ["all"]}]},
    )
    azure_error(
        response,
        400,
        "The request is invalid. Details: the value of field 'cat' contains a NUL character (U+0000), which the "
        "local search service cannot filter on faithfully; remove it.",
    )
    assert env.raw_ids({"search": "*", "filter": "cat eq 'a'"}, U1)[0] == set()


OTHER_PARAMS = [
    (
        {"select": "id; DROP TABLE docs_1"},
        "Could not find a property named 'id; DROP TABLE docs_1' on type 'search.document'.",
        "$select",
    ),
    ({"select": "id,*"}, "Could not find a property named '*' on type 'search.document'.", "$select"),
    (
        {"select": "json_extract(body,'$')"},
        "Could not find a property named 'json_extract(body' on type 'search.document'.",
        "$select",
    ),
    (
        {"orderby": "n; DROP TABLE docs_1"},
        "Syntax error in the order-by clause 'n; DROP TABLE docs_1'.",
        "$orderby",
    ),
    ({"orderby": "rid desc"}, "Could not find a property named 'rid' on type 'search.document'.", "$orderby"),
    (
        {"orderby": "n desc, (SELECT 1)"},
        "Syntax error in the order-by clause '(SELECT 1)'.",
        "$orderby",
    ),
    (
        {"orderby": "uids desc"},
        "The field 'uids' is not sortable; only sortable fields can be used in $orderby.",
        "$orderby",
    ),
    (
        {"searchFields": "text, c0"},
        "Could not find a property named 'c0' on type 'search.document'.",
        "searchFields",
    ),
    (
        {"searchFields": "uids"},
        "The field 'uids' in the search field list is not searchable.",
        "searchFields",
    ),
]


@pytest.mark.parametrize(("body", "message", "parameter"), OTHER_PARAMS, ids=lambda v: repr(v)[:40])
def test_hostile_select_orderby_and_search_fields_are_refused(
    env: Env, body: dict[str, str], message: str, parameter: str
) -> None:
    azure_error(
        env.post({"search": "drop", **body}, U1),
        400,
        f"Invalid expression: {message}\r\nParameter name: {parameter}",
    )


PERMISSION_PROBES = [
    any_eq("uids", "u", U2),
    any_eq("gids", "g", "0c000000-0000-0000-0000-000000000007"),
    not_(any_eq("uids", "u", "all")),
    F("uids/any()", lambda d: bool(d.get("uids"))),
    F("not uids/any() and not gids/any()", lambda d: not d.get("uids") and not d.get("gids")),
    F("uids/all(u: u eq 'none')", lambda d: all(u == "none" for u in d.get("uids") or [])),
    F("true", lambda d: True),
    F("not false", lambda d: True),
]


@pytest.mark.parametrize("flt", PERMISSION_PROBES, ids=lambda f: f.text)
@pytest.mark.parametrize("oid", [None, U1, U2, U3])
def test_filters_over_permission_fields_never_widen_what_a_user_reads(
    env: Env, flt: F, oid: str | None
) -> None:
    expected = env.expect(flt, oid)
    ids, count = env.raw_ids({"search": "*", "filter": flt.text}, oid)
    assert ids == expected and count == len(expected)
    readable = {d["id"] for d in DOCS if visible(d, oid, GROUPS.get(oid or "", []))}
    assert ids <= readable
    assert env.sdk_ids("drop", oid, filter=flt.text) <= readable


# ---- malformed bodies ------------------------------------------------------------------------------------------


MALFORMED_BODIES = [
    (
        b'{"search": "\\ud800drop"}',
        "The request is invalid. Details: the body holds an unpaired UTF-16 surrogate escape (\\uD800-\\uDFFF); send valid Unicode text.",
    ),
    (
        b'{"search": "*", "filter": "cat eq \'\\udfff\'"}',
        "The request is invalid. Details: the body holds an unpaired UTF-16 surrogate escape (\\uD800-\\uDFFF); send valid Unicode text.",
    ),
    (b"[" * 100_000, "The request is invalid. Details: the JSON body nests too deeply."),
    (
        b'{"search": "drop", "select": ' + b"[" * 50_000 + b"]" * 50_000 + b"}",
        "The request is invalid. Details: the JSON body nests too deeply.",
    ),
    (b'{"search": "\xed\xa0\x80"}', "The request is invalid. Details: the body is not valid JSON."),
    (b'{"search": "drop"', "The request is invalid. Details: the body is not valid JSON."),
    (b'{"search": ["drop", 1]}', "The request is invalid. Details: 'search' must be a string."),
]


@pytest.mark.parametrize(("raw", "message"), MALFORMED_BODIES, ids=lambda v: repr(v)[:30])
def test_malformed_bodies_are_refused(env: Env, raw: bytes, message: str) -> None:
    azure_error(env.post(raw, U1), 400, message)


NUMBERS = [
    ("n lt " + "9" * 5000, lambda d: True),
    ("n gt 99999999999999999999999", lambda d: False),
    ("n ge -99999999999999999999999", lambda d: True),
    ("n lt 9223372036854775807", lambda d: True),
    ("n ge 1e999", lambda d: False),
    ("n le 50.5 and n gt 49.9", lambda d: d["n"] == 50),
]


@pytest.mark.parametrize(("text", "meaning"), NUMBERS, ids=lambda v: str(v)[:30])
def test_out_of_range_numbers_compare_as_numbers(env: Env, text: str, meaning: Callable[[Any], bool]) -> None:
    flt = F(text, meaning)
    assert env.raw_ids({"search": "*", "filter": text}, U1)[0] == env.expect(flt, U1)


def test_a_pair_of_surrogate_escapes_is_one_character(env: Env) -> None:
    ids, _ = env.raw_ids({"search": "\U0001f600 union"}, U1)
    assert ids == env.expect(F("", lambda d: has_any_word(d, ["union"], ["text"])), U1)
    raw = env.post(b'{"search": "\\ud83d\\ude00 union", "select": "id", "top": 1000}', U1)
    assert raw.status_code == 200 and {r["id"] for r in raw.json()["value"]} == ids
