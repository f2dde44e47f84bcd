"""Permission-trimmed search over 100,000 documents, 1,000 users and 200 groups.

Builds the dataset directly through ``SearchStore`` (fast), then measures the query path through the store —
query parsing, the user's principal ids, SQL with the ACL probe, projection of the page — for the same queries
with ``permissionFilterOption`` enabled (trimmed, as a random user) and disabled (unfiltered), on the same index and
data, interleaved in blocks. Prints p50/p99 per query kind and the trimmed/unfiltered ratio.
With ``--http`` it also measures through the HTTP service with the real SDK (adds HTTP + SDK overhead).

Run: ``.venv/bin/python -m benchmarks.bench_search [--docs 100000] [--queries 400] [--http] [--quick]``
(``--quick``: only the match-all ``*`` queries, where the ACL drives the query.)
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from mcp_server.localcloud.search.request import SearchParams
from mcp_server.localcloud.search.store import QueryIdentity, SearchStore

INDEX = "bench"
TENANT = "00000000-0000-0000-0000-00000000b0b0"


def _definition(enabled: bool) -> dict[str, Any]:
    return {
        "name": INDEX,
        "fields": [
            {"name": "id", "type": "Edm.String", "key": True, "sortable": True, "searchable": False},
            {"name": "name", "type": "Edm.String", "searchable": True},
            {"name": "content", "type": "Edm.String", "searchable": True},
            {
                "name": "oid",
                "type": "Collection(Edm.String)",
                "searchable": False,
                "permissionFilter": "userIds",
            },
            {
                "name": "group",
                "type": "Collection(Edm.String)",
                "searchable": False,
                "permissionFilter": "groupIds",
            },
        ],
        "permissionFilterOption": "enabled" if enabled else "disabled",
    }


def build(
    store: SearchStore, n_docs: int, n_users: int, n_groups: int, rng: random.Random
) -> tuple[list[QueryIdentity], list[str]]:
    vocab = [f"w{i}x" for i in range(5000)]
    weights = [1.0 / (r + 1) for r in range(len(vocab))]
    users = [str(uuid.UUID(int=rng.getrandbits(128))) for _ in range(n_users)]
    groups = [str(uuid.UUID(int=rng.getrandbits(128))) for _ in range(n_groups)]
    identities = [QueryIdentity(TENANT, u, tuple(rng.sample(groups, rng.randint(1, 5)))) for u in users]
    store.create_index(_definition(True))
    batch: list[dict[str, Any]] = []
    for i in range(n_docs):
        words = rng.choices(vocab, weights, k=rng.randint(20, 60))
        public = rng.random() < 0.05
        batch.append(
            {
                "@search.action": "upload",
                "id": f"d{i:06d}",
                "name": " ".join(words[:4]),
                "content": " ".join(words[4:]),
                "oid": ["all"] if public else rng.sample(users, rng.randint(1, 2)),
                "group": rng.sample(groups, rng.randint(0, 2)),
            }
        )
        if len(batch) == 10_000:
            store.index_documents(INDEX, batch)
            batch = []
    if batch:
        store.index_documents(INDEX, batch)
    # Query terms from the middle of the frequency range (each in roughly 1-5% of documents).
    return identities, vocab[60:600]


def _time(fn: Any) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1000


def measure_store(
    store: SearchStore,
    identities: list[QueryIdentity],
    terms: list[str],
    n: int,
    rng: random.Random,
    quick: bool = False,
) -> None:
    ranked = {
        "term, top 50": lambda t: SearchParams(search=t, top=50),
        "two terms (any), top 10": lambda t: SearchParams(search=f"{t} {rng.choice(terms)}", top=10),
    }
    match_all = {
        "'*' order by id, top 50 (list all)": lambda t: SearchParams(search="*", orderby="id asc", top=50),
        "'*' unordered, top 50": lambda t: SearchParams(search="*", top=50),
    }
    kinds = match_all if quick else {**ranked, **match_all}
    print(f"query path: SearchStore.search (in-process, no HTTP); {n} queries per kind and mode\n")
    for _ in range(100):  # warm-up (page cache, statement cache)
        store.search(INDEX, SearchParams(search=rng.choice(terms), top=50), rng.choice(identities))
    print(f"{'query':45} {'unfiltered p50/p99 ms':>22} {'trimmed p50/p99 ms':>20} {'ratio p50':>10}")
    for label, make in kinds.items():
        samples: dict[bool, list[float]] = {True: [], False: []}
        for block in range(8):
            enabled = block % 2 == 0
            store.create_or_update_index(INDEX, _definition(enabled))
            for _ in range(n // 4):
                params = make(rng.choice(terms))
                who = rng.choice(identities)
                samples[enabled].append(_time(lambda p=params, w=who: store.search(INDEX, p, w)))
        un, tr = samples[False], samples[True]
        p50u, p50t = statistics.median(un), statistics.median(tr)
        p99u, p99t = _p99(un), _p99(tr)
        print(f"{label:45} {p50u:10.2f} / {p99u:7.2f} {p50t:10.2f} / {p99t:7.2f} {p50t / p50u:9.2f}x")
    store.create_or_update_index(INDEX, _definition(True))


def _p99(values: list[float]) -> float:
    return sorted(values)[max(0, int(len(values) * 0.99) - 1)]


def measure_http(
    data_dir: Path, identities: list[QueryIdentity], terms: list[str], n: int, rng: random.Random
) -> None:
    """Through the HTTP service with the real SDK, the user's token in x-ms-query-source-authorization (validated
    per request: RS256 signature, claims) and groups from a directory, as the MCP server sees it."""
    import jwt
    from azure.core.credentials import AzureKeyCredential
    from azure.search.documents import SearchClient
    from cryptography.hazmat.primitives.asymmetric import rsa

    from mcp_server.localcloud.search.auth import EntraTokenValidator
    from mcp_server.localcloud.search.service import SearchService

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = {
        **jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key(), as_dict=True),
        "kid": "bench",
        "alg": "RS256",
    }
    issuer = f"https://sts.windows.net/{TENANT}/"
    validator = EntraTokenValidator(lambda: {"keys": [jwk]}, issuers={issuer})
    groups = {i.oid: list(i.groups) for i in identities}
    now = int(time.time())
    tokens = {
        i.oid: jwt.encode(
            {
                "aud": "https://search.azure.com",
                "iss": issuer,
                "tid": TENANT,
                "oid": i.oid,
                "iat": now,
                "nbf": now,
                "exp": now + 3600,
            },
            key,
            algorithm="RS256",
            headers={"kid": "bench"},
        )
        for i in identities
    }
    with SearchService(data_dir, "bench-key", validator, lambda t, o: groups.get(o)) as svc:
        client = SearchClient(svc.endpoint, INDEX, AzureKeyCredential("bench-key"))
        store = svc.store
        assert store is not None
        for _ in range(50):  # warm-up: connections, caches, the worker threads' SQLite connections
            list(client.search(rng.choice(terms), top=50))
        samples: dict[bool, list[float]] = {True: [], False: []}
        for block in range(8):
            enabled = block % 2 == 0
            store.create_or_update_index(INDEX, _definition(enabled))
            for _ in range(n // 8):
                term, who = rng.choice(terms), rng.choice(identities)
                samples[enabled].append(
                    _time(
                        lambda t=term, w=who: list(
                            client.search(t, top=50, query_source_authorization=tokens[w.oid])
                        )
                    )
                )
        store.create_or_update_index(INDEX, _definition(True))
    un, tr = samples[False], samples[True]
    print(
        "\nquery path: HTTP + SDK (SearchClient.search with a user token; the same token is sent when unfiltered)\n"
        f"term, top 50: unfiltered p50 {statistics.median(un):.2f} ms p99 {_p99(un):.2f} ms; "
        f"trimmed p50 {statistics.median(tr):.2f} ms p99 {_p99(tr):.2f} ms; "
        f"ratio p50 {statistics.median(tr) / statistics.median(un):.2f}x"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=100_000)
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--groups", type=int, default=200)
    parser.add_argument("--queries", type=int, default=400)
    parser.add_argument("--http", action="store_true")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="only the match-all ('*') queries")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="bench-search-") as tmp:
        store = SearchStore(Path(tmp))
        start = time.perf_counter()
        identities, terms = build(store, args.docs, args.users, args.groups, rng)
        print(
            f"built {args.docs} documents, {args.users} users, {args.groups} groups in "
            f"{time.perf_counter() - start:.1f} s\n"
        )
        visible = [
            store.search(INDEX, SearchParams(search="*", top=0, count=True), rng.choice(identities)).count
            or 0
            for _ in range(20)
        ]
        print(f"a user sees {statistics.mean(visible) / args.docs:.1%} of the documents on average\n")
        measure_store(store, identities, terms, args.queries, rng, quick=args.quick)
        store.close()
        if args.http:
            measure_http(Path(tmp), identities, terms, args.queries, rng)


if __name__ == "__main__":
    main()
