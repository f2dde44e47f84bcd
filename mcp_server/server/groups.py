"""The caller's group memberships, for "why you can see it" (docs/server.md, Groups).

From the token's ``groups`` claim when it carries one. Entra leaves it out when the API's registration does not ask
for groups (``groupMembershipClaims``) and replaces it with the overage claims (``_claim_names`` /
``_claim_sources``) above 200 groups; then the memberships come from Microsoft Graph with an OBO token for Graph,
cached per user like the search token. Only the configured Graph endpoint is called: the URL in ``_claim_sources``
is never fetched (a token could name any host). A Graph failure leaves the memberships unknown, never the search.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import anyio
import requests

from mcp_server.server.config import ServerConfig
from mcp_server.server.obo import CacheKey, OboError, OboExchanger, OboToken
from mcp_server.server.obo_cache import OboTokenCache

GroupsSource = Literal["token", "graph", "unknown"]
MAX_PAGES = 100  # a listing longer than this (99,900 groups at 999 a page) is refused, not followed forever
GROUP_TYPE = "#microsoft.graph.group"


class GraphFailed(Exception):
    """Microsoft Graph did not give the memberships; the message says why. Never holds a token."""


@dataclass(frozen=True)
class CallerGroups:
    """The caller's group ids (None: unknown), where they came from, and why unknown."""

    ids: tuple[str, ...] | None
    source: GroupsSource
    error: str | None = None


def token_groups(claims: Mapping[str, Any]) -> list[str] | None:
    """The token's ``groups``, or None when the token does not tell them (no claim, or the overage claims)."""
    names = claims.get("_claim_names")
    if isinstance(names, dict) and "groups" in names:
        return None  # overage: `groups` is somewhere else, whatever else the token says
    groups = claims.get("groups")
    if not isinstance(groups, list):
        return None
    return [str(g) for g in groups]


class GraphGroups:
    """Reads ``/v1.0/me/transitiveMemberOf`` page by page from the configured endpoint (blocking: run off the loop)."""

    def __init__(self, config: ServerConfig) -> None:
        self.endpoint = config.graph_endpoint.rstrip("/")
        self.page_size = config.graph_page_size
        self.timeout = config.graph_timeout
        self._http = requests.Session()
        if config.ca_cert is not None:
            # Trust exactly the local CA (the identity host serves Graph's subset locally), as the OBO client does.
            self._http.trust_env = False
            self._http.verify = str(config.ca_cert)

    def close(self) -> None:
        self._http.close()

    def member_groups(self, token: OboToken) -> list[str]:
        """Every group the token's user is a member of, directly or transitively."""
        url: str | None = f"{self.endpoint}/v1.0/me/transitiveMemberOf?$select=id&$top={self.page_size}"
        ids: list[str] = []
        for _ in range(MAX_PAGES):
            if url is None:
                return ids
            page = self._get(url, token)
            ids += [str(o["id"]) for o in page.get("value", []) if o.get("@odata.type") == GROUP_TYPE]
            url = self._next(page.get("@odata.nextLink"))
        raise GraphFailed(f"Microsoft Graph listed more than {MAX_PAGES} pages of memberships")

    def _next(self, link: Any) -> str | None:
        if link is None:
            return None
        # The next page must be on the same Graph: the user's Graph token goes nowhere else.
        if not isinstance(link, str) or not link.startswith(f"{self.endpoint}/v1.0/"):
            raise GraphFailed("Microsoft Graph's next-page link points outside the configured Graph endpoint")
        return link

    def _get(self, url: str, token: OboToken) -> dict[str, Any]:
        headers = {
            "Authorization": f"Bearer {token.access_token.get_secret_value()}",
            "Accept": "application/json",
        }
        try:
            response = self._http.get(url, headers=headers, timeout=self.timeout, allow_redirects=False)
        except requests.RequestException as exc:
            raise GraphFailed(f"Microsoft Graph is unreachable ({type(exc).__name__})") from exc
        if response.status_code != 200:
            raise GraphFailed(_describe(response))
        try:
            body = response.json()
        except ValueError as exc:
            raise GraphFailed("Microsoft Graph answered something that is not JSON") from exc
        if not isinstance(body, dict) or not isinstance(body.get("value"), list):
            raise GraphFailed("Microsoft Graph answered without a 'value' list")
        return body


def _describe(response: requests.Response) -> str:
    try:
        error = response.json()["error"]
        detail = f" {error['code']}: {error['message']}"
    except (ValueError, KeyError, TypeError):
        detail = ""
    return f"Microsoft Graph answered HTTP {response.status_code}{detail}"


def _obo_cause(exc: OboError) -> str:
    if exc.aadsts == "AADSTS65001":
        return (
            "the OBO token for Microsoft Graph was refused (AADSTS65001): consent for Microsoft Graph is missing "
            "(grant User.Read or GroupMember.Read.All with admin consent)"
        )
    return f"the OBO token for Microsoft Graph was refused{f' ({exc.aadsts})' if exc.aadsts else ''}: {exc.cause}"


async def caller_groups(
    claims: Mapping[str, Any],
    assertion: str,
    *,
    exchanger: OboExchanger,
    cache: OboTokenCache,
    graph: GraphGroups,
) -> CallerGroups:
    """The caller's groups: the token's own when it has them, else Microsoft Graph's; unknown (with why) if that
    fails. The Graph token is cached under the validated token's (tid, oid, Graph scope)."""
    from_token = token_groups(claims)
    if from_token is not None:
        return CallerGroups(tuple(from_token), "token")
    scope = exchanger.config.graph_scope
    key: CacheKey = (str(claims["tid"]), str(claims["oid"]), scope)

    async def exchange() -> OboToken:
        return await anyio.to_thread.run_sync(exchanger.exchange, assertion, scope)

    try:
        token, _ = await cache.get(key, exchange)
        ids = await anyio.to_thread.run_sync(graph.member_groups, token)
    except OboError as exc:
        return CallerGroups(None, "unknown", _obo_cause(exc))
    except GraphFailed as exc:
        return CallerGroups(None, "unknown", str(exc))
    return CallerGroups(tuple(ids), "graph")
