"""The ``get_documents`` tool: validated caller → OBO exchange (cached per user) → permission-trimmed search."""

from __future__ import annotations

import time
from typing import Annotated, Any

import anyio
from fastmcp import Context, FastMCP
from fastmcp.server.dependencies import get_access_token
from fastmcp.tools import ToolResult
from mcp.types import TextContent
from pydantic import Field

from mcp_server.server.auth import ValidatedToken
from mcp_server.server.challenge import challenge_body
from mcp_server.server.documents import DocumentSearch, SearchFailed
from mcp_server.server.groups import GraphGroups, caller_groups, token_groups
from mcp_server.server.metrics import ServerMetrics
from mcp_server.server.obo import CacheKey, OboError, OboExchanger, OboToken, sign_in_strength
from mcp_server.server.obo_cache import OboTokenCache
from mcp_server.server.steps import META_KEY, StepTrace

TOOL_NAME = "get_documents"
MAX_TOP = 50
DESCRIPTION = (
    "Search the document index as the signed-in user. Returns only documents this user may read. "
    "`query` uses the simple query syntax ('*' = everything); `top` is 1–50."
)
# Claims of the user token worth showing as "who the search ran as".
_RAN_AS = ("name", "preferred_username", "oid", "tid")


def register_get_documents(
    mcp: FastMCP,
    *,
    exchanger: OboExchanger,
    cache: OboTokenCache,
    search: DocumentSearch,
    metrics: ServerMetrics,
    graph: GraphGroups,
) -> None:
    scope = exchanger.config.obo_scope

    @mcp.tool(name=TOOL_NAME, description=DESCRIPTION)
    async def get_documents(
        ctx: Context,
        query: Annotated[
            str, Field(description="Search text; '*' matches everything.", max_length=1000)
        ] = "*",
        top: Annotated[
            int, Field(ge=1, le=MAX_TOP, description="Maximum documents to return (1–50).")
        ] = MAX_TOP,
    ) -> ToolResult:
        trace = StepTrace(ctx)
        token = get_access_token()  # this request's caller: never a module-level "current token"
        if not isinstance(token, ValidatedToken):
            metrics.tool_calls.labels(tool=TOOL_NAME, outcome="error").inc()
            return _error("no validated user token on this request", trace, {})
        claims = token.claims
        ran_as = {k: claims.get(k) for k in _RAN_AS} | {"groups": token_groups(claims)}
        await trace.record(
            "validate",
            "ok",
            token.validation_ms,
            oid=claims.get("oid"),
            tid=claims.get("tid"),
            signature="cached" if token.signature_cached else "verified",
        )

        key: CacheKey = (str(claims["tid"]), str(claims["oid"]), scope, sign_in_strength(claims))

        async def exchange() -> OboToken:
            metrics.obo_exchanges.labels(outcome="started").inc()
            return await anyio.to_thread.run_sync(exchanger.exchange, token.token)

        started = time.perf_counter()
        try:
            obo, status = await cache.get(key, exchange)
        except OboError as exc:
            await trace.record("obo_exchange", "error", _ms(started), aadsts=exc.aadsts, error=exc.cause)
            if exc.challenge:  # Conditional Access: no retry, no fallback; the client must step up
                metrics.tool_calls.labels(tool=TOOL_NAME, outcome="claims_challenge").inc()
                challenge = challenge_body(exc, scope)
                return _error(
                    f"{exc} The user must sign in again to satisfy the claims challenge.",
                    trace,
                    {"ran_as": ran_as, "aadsts": exc.aadsts, "challenge": challenge},
                    structured=challenge,
                )
            metrics.tool_calls.labels(tool=TOOL_NAME, outcome="obo_error").inc()
            return _error(str(exc), trace, {"ran_as": ran_as, "aadsts": exc.aadsts})
        if status != "miss":
            metrics.obo_cache_hits.inc()
        await trace.record(
            "obo_exchange", "cache_hit" if status != "miss" else "ok", _ms(started), cache=status
        )

        # Groups from the token, or Microsoft Graph when the token has none or the overage claims.
        started = time.perf_counter()
        groups = await caller_groups(claims, token.token, exchanger=exchanger, cache=cache, graph=graph)
        ran_as |= {
            "groups": list(groups.ids) if groups.ids is not None else None,
            "groups_source": groups.source,
        }
        if groups.error is not None:
            ran_as["groups_error"] = groups.error
        groups_ms = round(_ms(started), 3)

        started = time.perf_counter()
        try:
            with metrics.search_seconds.time():
                documents = await search.search_as_async(
                    query, top, obo, str(claims["oid"]), groups.ids, groups.error
                )
        except SearchFailed as exc:
            await trace.record("search", "error", _ms(started), error=str(exc))
            metrics.tool_calls.labels(tool=TOOL_NAME, outcome="search_error").inc()
            return _error(
                f"Search failed: {exc}",
                trace,
                {"ran_as": ran_as, "obo_claims": obo.claims, "cache_hit": status != "miss"},
            )
        await trace.record(
            "search", "ok", _ms(started), hits=len(documents), groups=groups.source, groups_ms=groups_ms
        )
        metrics.tool_calls.labels(tool=TOOL_NAME, outcome="ok").inc()
        meta = {
            "ran_as": ran_as,
            "obo_claims": obo.claims,
            "cache_hit": status != "miss",
            "cache": status,
            "hits": len(documents),
            "steps": trace.steps,
            "aadsts": None,
        }
        return ToolResult(
            structured_content={"documents": documents, "count": len(documents), "query": query},
            meta={META_KEY: meta},
        )


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000


def _error(
    message: str, trace: StepTrace, meta: dict[str, Any], structured: dict[str, Any] | None = None
) -> ToolResult:
    """A tool error: the cause in the content, no documents, the trace in _meta (a claims challenge also as
    structured content, for clients that act on it)."""
    body: dict[str, Any] = {
        "ran_as": None,
        "obo_claims": None,
        "cache_hit": None,
        "hits": 0,
        "aadsts": None,
        "error": message,
    }
    body.update(meta)
    body["steps"] = trace.steps
    return ToolResult(
        content=[TextContent(type="text", text=message)],
        structured_content=structured,
        meta={META_KEY: body},
        is_error=True,
    )
