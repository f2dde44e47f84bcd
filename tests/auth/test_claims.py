"""Claims decoding (without verification) and the plain-language meaning of each standard claim."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from console.core.claims import (
    CLAIM_MEANINGS,
    ClaimsError,
    claim_meaning,
    decode_claims,
    decode_header,
    display_value,
    expiry_countdown,
    explain_claims,
    format_duration,
    unverified_expiry,
)
from tests.auth.helpers import fake_jwt

STANDARD = [
    "aud",
    "iss",
    "iat",
    "nbf",
    "exp",
    "sub",
    "oid",
    "tid",
    "azp",
    "scp",
    "roles",
    "ver",
    "name",
    "preferred_username",
    "groups",
    "uti",
    "rh",
    "aio",
    "idp",
    "amr",
    "upn",
    "appid",
    "wids",
    "email",
]


def test_decodes_payload_and_public_header_fields_only() -> None:
    token = fake_jwt({"oid": "o-1", "scp": "execute", "exp": 2_000_000_000, "groups": ["g1", "g2"]})
    assert decode_claims(token)["oid"] == "o-1"
    assert decode_claims(SecretStr(token))["groups"] == ["g1", "g2"]
    assert decode_header(token) == {"alg": "RS256", "kid": "k1", "typ": "JWT"}


@pytest.mark.parametrize(
    "bad", ["", "abc", "a.b", "a.b.c.d", "eyJhbGciOiJub25lIn0.!!!.x", "eyJhIjoxfQ.WzFd.x"]
)
def test_malformed_tokens_raise_claims_error(bad: str) -> None:
    with pytest.raises(ClaimsError):
        decode_claims(bad)


def test_malformed_token_errors_say_what_is_wrong_without_echoing_the_token() -> None:
    with pytest.raises(ClaimsError, match=r"^not a JWT \(expected three dot-separated parts\)$"):
        decode_claims("a.b.c.d")
    secret_part = "c2VjcmV0LXBheWxvYWQ"  # base64url of "secret-payload": not JSON
    with pytest.raises(ClaimsError, match=r"^the token's payload cannot be read") as error:
        decode_claims(f"eyJhbGciOiJSUzI1NiJ9.{secret_part}.c2ln")
    assert secret_part not in str(error.value) and "secret-payload" not in str(error.value)
    with pytest.raises(ClaimsError, match=r"^the token's header cannot be read"):
        decode_header("bm90LWpzb24.e30.c2ln")


def test_unverified_expiry_reads_exp_or_says_none() -> None:
    assert unverified_expiry(fake_jwt({"exp": 2_000_000_000})) == 2_000_000_000.0
    assert unverified_expiry(SecretStr(fake_jwt({"exp": "1700000000"}))) == 1_700_000_000.0
    assert unverified_expiry(fake_jwt({"oid": "o-1"})) is None
    assert unverified_expiry(fake_jwt({"exp": "soon"})) is None
    assert unverified_expiry("not-a-token") is None


def test_every_standard_claim_has_a_one_line_meaning() -> None:
    for name in STANDARD:
        meaning = claim_meaning(name)
        assert meaning and "\n" not in meaning and len(meaning) < 130, name
    assert "immutable" in CLAIM_MEANINGS["oid"] and "client application" in CLAIM_MEANINGS["azp"]
    assert claim_meaning("xms_pl").startswith("Microsoft extension")
    assert claim_meaning("made_up_claim") == ""


def test_explain_and_display() -> None:
    lines = explain_claims({"exp": 0, "groups": ["a", "b"], "scp": "execute", "custom": {"k": 1}})
    assert [line.name for line in lines] == ["exp", "groups", "scp", "custom"]
    assert lines[0].display == "0 (1970-01-01 00:00:00 UTC)" and lines[0].meaning.startswith("Expires")
    assert lines[1].display == "a, b" and lines[3].display == '{"k": 1}' and lines[3].meaning == ""
    assert display_value("groups", []) == "(none)"


def test_expiry_countdown() -> None:
    assert expiry_countdown({"exp": 1000 + 3723}, now=1000) == "expires in 1h 02m 03s"
    assert expiry_countdown({"exp": 1000 + 59}, now=1000) == "expires in 59s"
    assert expiry_countdown({"exp": 1000 - 190}, now=1000) == "expired 3m 10s ago"
    assert expiry_countdown({}, now=1000) == "no expiry claim"
    assert format_duration(0) == "0s"
