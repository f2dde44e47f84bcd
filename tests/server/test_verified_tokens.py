"""The verified-token memory shared by the MCP server's verifier and the local search service: bounded in entries
and in time, keyed by the token's SHA-256 (never the token), an entry past its time gone."""

from __future__ import annotations

from mcp_server.verified_tokens import VerifiedTokens, token_digest


def test_an_entry_lives_until_the_token_ends_or_the_cap_whichever_is_first() -> None:
    tokens: VerifiedTokens[str] = VerifiedTokens(size=8, seconds=60.0)
    short, long = token_digest("short-lived"), token_digest("long-lived")
    tokens.put(short, "a", until=110.0, now=100.0)  # the token ends in 10 s
    tokens.put(long, "b", until=100_000.0, now=100.0)  # ends in a day: kept 60 s at most
    assert (tokens.get(short, 109.9), tokens.get(long, 159.9)) == ("a", "b")
    assert tokens.get(short, 110.0) is None and tokens.get(long, 160.0) is None
    assert len(tokens) == 0  # an entry past its time is dropped when looked up


def test_the_least_recently_used_entry_goes_first_when_full() -> None:
    tokens: VerifiedTokens[int] = VerifiedTokens(size=3, seconds=60.0)
    digests = [token_digest(f"token-{i}") for i in range(4)]
    for i, digest in enumerate(digests[:3]):
        tokens.put(digest, i, until=1e9, now=0.0)
    assert tokens.get(digests[0], 1.0) == 0  # used: now the most recent
    tokens.put(digests[3], 3, until=1e9, now=1.0)
    assert len(tokens) == 3
    assert [tokens.get(d, 2.0) for d in digests] == [0, None, 2, 3]


def test_the_key_is_a_digest_of_the_whole_token_never_the_token() -> None:
    token = "eyJhbGciOiJSUzI1NiJ9.eyJvaWQiOiJhbGljZSJ9.c2lnbmF0dXJl"
    digest = token_digest(token)
    assert len(digest) == 32 and token.encode() not in digest
    assert digest != token_digest(token[:-1] + "f") and digest != token_digest(token + " ")
