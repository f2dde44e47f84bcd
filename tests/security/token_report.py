"""Tally of the token-check cases against a fresh local stack: ``python -m tests.security.token_report``.

Prints, per group (forged, wrongly-claimed, concurrent users), how many cases were tried, how many were accepted
(HTTP 2xx for a hostile token), leaked (documents outside the caller's own set, or any documents for a hostile
token), answered 5xx, and counted under a reason other than the expected one. A 5xx among the concurrent calls
raises in the MCP client and stops the run, so a printed tally there means none happened. The pass/fail assertions live in
``test_token_checks.py``; this gives the figures.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from collections import Counter
from pathlib import Path

from mcp_server.stack import LocalStack, StackPorts
from tests.fixtures.stack import api_token
from tests.security.test_token_checks import (
    USERS,
    _interleaved,
    auth_failures,
    post_tools_call,
    server_of,
)
from tests.security.token_forge import FORGED, WRONG_CLAIMS, Case, Forge
from tests.server.helpers import call, expected_names


def run_cases(stack: LocalStack, cases: list[Case]) -> Counter[str]:
    forge, tally = Forge(stack), Counter[str]()
    for case in cases:
        before = auth_failures(server_of(stack))
        response = post_tools_call(stack.mcp_url, case.build(forge))
        after = auth_failures(server_of(stack))
        tally["tried"] += 1
        tally["accepted"] += 200 <= response.status_code < 300
        tally["leaked"] += '"documents"' in response.text
        tally["5xx"] += response.status_code >= 500
        right = (
            after.get(case.reason, 0) == before.get(case.reason, 0) + 1
            and response.status_code == case.status
        )
        if not right:
            tally["other_answer"] += 1
            print(
                f"  {case.name}: HTTP {response.status_code}, counted as "
                f"{sorted(k for k in after if after[k] != before.get(k, 0))}",
                file=sys.stderr,
            )
    return tally


def run_concurrent(stack: LocalStack) -> Counter[str]:
    tokens = {login: api_token(stack, login) for login in USERS}
    server_of(stack).cache.clear()
    tally = Counter[str]()
    for login, results in asyncio.run(_interleaved(stack.mcp_url, tokens)).items():
        allowed = expected_names(stack, login)
        for result in results:
            tally["tried"] += 1
            tally["errors"] += bool(result.is_error)  # a 5xx would raise in the client and stop the run
            names = {d["name"] for d in (result.structured_content or {}).get("documents", [])}
            tally["leaked"] += bool(names - allowed)
    return tally


def main() -> None:
    with (
        tempfile.TemporaryDirectory() as home,
        LocalStack(home=Path(home), ports=StackPorts(identity=0, search=0, mcp=0, calculator=None)) as stack,
    ):
        warm = asyncio.run(call(stack.mcp_url, api_token(stack, "alice")))  # alice's OBO token is now cached
        assert not warm.is_error, warm.content
        hostile = ("tried", "accepted", "leaked", "5xx", "other_answer")
        for group, tally, keys in (
            ("forged", run_cases(stack, FORGED), hostile),
            ("wrong claims", run_cases(stack, WRONG_CLAIMS), hostile),
            ("concurrent users", run_concurrent(stack), ("tried", "errors", "leaked", "5xx")),
        ):
            print(f"{group:17} " + ", ".join(f"{key} {tally[key]}" for key in keys))


if __name__ == "__main__":
    main()
