"""Test helpers for the search area: tokens signed with the tests' own RSA key, and a reference BM25."""

from __future__ import annotations

import math
import time
import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from mcp_server.localcloud.search.analyzer import tokenize

TENANT = "11111111-2222-3333-4444-555555555555"
ISSUER = f"https://sts.windows.net/{TENANT}/"
SEARCH_AUD = "https://search.azure.com"


class Signer:
    """An RSA key pair with its JWKS; mints search tokens like Entra's v1 tokens for Azure AI Search."""

    def __init__(self, kid: str | None = None) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = kid or uuid.uuid4().hex

    def jwks(self) -> dict[str, Any]:
        jwk = jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key(), as_dict=True)
        return {"keys": [{**jwk, "kid": self.kid, "use": "sig", "alg": "RS256"}]}

    def token(
        self,
        oid: str,
        *,
        aud: str = SEARCH_AUD,
        iss: str = ISSUER,
        tid: str = TENANT,
        lifetime: int = 3600,
        kid: str | None = None,
        **extra: Any,
    ) -> str:
        now = int(time.time())
        exp = now + lifetime
        claims = {
            "aud": aud,
            "iss": iss,
            "tid": tid,
            "oid": oid,
            "iat": min(now, exp - 60),
            "nbf": min(now, exp - 60),
            "exp": exp,
            "ver": "1.0",
            "scp": "user_impersonation",
            **extra,
        }
        return jwt.encode(claims, self.key, algorithm="RS256", headers={"kid": kid or self.kid})


def bm25_scores(
    docs: Mapping[str, Sequence[str]],
    query_tokens: Sequence[str],
    *,
    fields: Sequence[int] | None = None,
    k1: float = 1.2,
    b: float = 0.75,
) -> dict[str, float]:
    """Okapi BM25 as SQLite FTS5 defines ``bm25()`` (the service's documented ranking), computed independently.

    ``docs`` maps key -> the text of each searchable field (in index order). Document length counts every
    searchable field; term frequency counts only ``fields`` (default all). IDF = ln((N - n + 0.5) / (n + 0.5)),
    floored at 1e-6 as FTS5 does; ``n`` counts documents with the term in any searchable field.
    """
    tokenized = {key: [tokenize(text) for text in texts] for key, texts in docs.items()}
    n_docs = len(tokenized)
    lengths = {key: sum(len(t) for t in cols) for key, cols in tokenized.items()}
    avgdl = sum(lengths.values()) / n_docs
    scores: dict[str, float] = {}
    for key, cols in tokenized.items():
        chosen = cols if fields is None else [cols[i] for i in fields]
        counts = Counter(tok for col in chosen for tok in col)
        total = 0.0
        for term in query_tokens:
            n = sum(1 for other in tokenized.values() if any(term in col for col in other))
            idf = math.log((n_docs - n + 0.5) / (n + 0.5))
            idf = idf if idf > 0 else 1e-6
            tf = counts[term]
            total += idf * (tf * (k1 + 1)) / (tf + k1 * (1 - b + b * lengths[key] / avgdl))
        if any(counts[t] for t in query_tokens):
            scores[key] = total
    return scores
