"""Checks the console makes of an MCP server before and while talking to it: whether a URL may receive the token,
whether the server's RFC 9728 protected-resource metadata names this URL, authority and API, and how healthy it is.

HTTP here never follows the machine's CA-bundle or proxy variables: trust is explicit (``verify``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests

from console.core.link_state import LinkState
from console.core.mcp_trust import check_resource
from mcp_server.errors import UserError


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "", "", ""))


def health_url(mcp_url: str) -> str:
    return _origin(mcp_url) + "/healthz"


def metadata_url(mcp_url: str) -> str:
    """RFC 9728 path-inserted well-known URL: https://host/.well-known/oauth-protected-resource/<path>."""
    path = urlsplit(mcp_url).path.rstrip("/")
    return _origin(mcp_url) + "/.well-known/oauth-protected-resource" + path


# ---------------------------------------------------------------------------------------------------------------
# Protected-resource metadata check (--connect)


@dataclass(frozen=True)
class ResourceMetadata:
    resource: str | None
    authorization_servers: list[str]
    scopes_supported: list[str]


def api_identifier(api_client_id: str | None, api_scope: str | None = None) -> str | None:
    """The API's identifier URI: the scope minus its last segment (``api://<id>/execute`` → ``api://<id>``)."""
    if api_scope and "/" in api_scope.removeprefix("api://"):
        return api_scope.rsplit("/", 1)[0]
    return f"api://{api_client_id}" if api_client_id else None


def _norm(value: str) -> str:
    return value.strip().rstrip("/").lower()


def check_resource_metadata(
    document: dict[str, Any], *, url: str, authority: str, identifier: str
) -> ResourceMetadata:
    """Accept the metadata only if its ``resource`` is ``url`` (RFC 9728 §3.3) and it names ``authority`` (or its
    v2.0 issuer) and the API ``identifier``."""

    check_resource(document.get("resource"), url)  # a copy of another server's metadata names that server
    servers = [s for s in document.get("authorization_servers") or [] if isinstance(s, str)]
    scopes = [s for s in document.get("scopes_supported") or [] if isinstance(s, str)]
    resource = document.get("resource") if isinstance(document.get("resource"), str) else None
    meta = ResourceMetadata(resource=resource, authorization_servers=servers, scopes_supported=scopes)
    claimed = (
        f"it claims authorization_servers={servers or '[]'}, scopes_supported={scopes or '[]'}, "
        f"resource={resource!r}"
    )
    accepted = {_norm(authority), _norm(authority) + "/v2.0"}
    if not any(_norm(s) in accepted for s in servers):
        raise UserError(
            f"Refusing to connect to {url}: its protected-resource metadata does not name this console's "
            f"authority {authority}; {claimed}. No token was sent.",
            hint="Check the URL, or configure the authority that server trusts (OBO_CONSOLE_AUTHORITY).",
        )
    ident = _norm(identifier)
    named = [s for s in [*scopes, resource or ""] if _norm(s) == ident or _norm(s).startswith(ident + "/")]
    if not named:
        raise UserError(
            f"Refusing to connect to {url}: its protected-resource metadata does not name the API {identifier}; "
            f"{claimed}. No token was sent.",
            hint="Check the URL, or configure the API that server protects (OBO_CONSOLE_API_CLIENT_ID).",
        )
    return meta


def fetch_resource_metadata(
    url: str, *, authority: str, identifier: str, verify: bool | str = True, timeout: float = 5.0
) -> ResourceMetadata:
    """GET the server's protected-resource metadata (no token) and check it (``check_resource_metadata``)."""
    where = metadata_url(url)
    try:
        response = http_get(where, verify=verify, timeout=timeout)
    except requests.RequestException as exc:
        raise UserError(
            f"Cannot read {where} to check the server before connecting: {short_error(exc)}.",
            hint="Is the server running, and is the URL right?",
        ) from exc
    if response.status_code != 200:
        raise UserError(
            f"Refusing to connect to {url}: {where} answered HTTP {response.status_code}, so the server does not "
            "say which authority it trusts. No token was sent.",
            hint="The server must publish RFC 9728 protected-resource metadata for its MCP path.",
        )
    try:
        document = response.json()
    except ValueError as exc:
        raise UserError(
            f"Refusing to connect to {url}: {where} did not return JSON. No token was sent."
        ) from exc
    if not isinstance(document, dict):
        raise UserError(f"Refusing to connect to {url}: {where} is not a JSON object. No token was sent.")
    return check_resource_metadata(document, url=url, authority=authority, identifier=identifier)


def http_get(url: str, *, verify: bool | str, timeout: float) -> requests.Response:
    """GET without redirects, trusting only ``verify`` (never the environment's CA bundle or proxies)."""
    with requests.Session() as session:
        session.trust_env = False  # REQUESTS_CA_BUNDLE & proxies must not decide which server is trusted
        session.verify = verify
        return session.get(url, timeout=timeout, allow_redirects=False)


def short_error(exc: BaseException) -> str:
    """An exception in one short line (for status details)."""
    text = str(exc) or type(exc).__name__
    return text if len(text) < 200 else text[:197] + "..."


@dataclass(frozen=True)
class Health:
    """What ``/healthz`` said: READY (200), DEGRADED (it answers but names parts not ready) or DOWN."""

    state: LinkState
    detail: str
    not_ready: tuple[str, ...] = ()  # the parts a degraded server named

    @property
    def answers(self) -> bool:
        return self.state.accepts_turns


def probe_health(url: str, *, verify: bool | str = True, timeout: float = 2.0) -> Health:
    """The server's health from ``/healthz``; a server without ``/healthz`` counts as ready if its metadata answers.

    A 503 whose JSON body names parts that are not ready (``{"parts": {name: {"ready": false, "error": ...}}}``)
    is DEGRADED: the server answers, a dependency does not. Anything else that is not 200 is DOWN."""
    try:
        response = http_get(health_url(url), verify=verify, timeout=timeout)
    except requests.RequestException as exc:
        return Health(LinkState.DOWN, short_error(exc))
    if response.status_code == 200:
        return Health(LinkState.READY, "healthy")
    if response.status_code == 404:
        try:
            meta = http_get(metadata_url(url), verify=verify, timeout=timeout)
        except requests.RequestException as exc:
            return Health(LinkState.DOWN, short_error(exc))
        state = LinkState.READY if meta.status_code == 200 else LinkState.DOWN
        return Health(state, f"no /healthz; metadata HTTP {meta.status_code}")
    parts = _parts_not_ready(response) if response.status_code == 503 else {}
    if parts:
        named = ", ".join(f"{name} ({error})" if error else name for name, error in parts.items())
        return Health(LinkState.DEGRADED, f"not ready: {named}", tuple(parts))
    return Health(
        LinkState.DOWN, f"/healthz answered HTTP {response.status_code}: {_health_detail(response)}"
    )


def _parts_not_ready(response: requests.Response) -> dict[str, str]:
    """The parts a ``/healthz`` body names as not ready, each with its error (empty: no such body)."""
    try:
        body = response.json()
    except ValueError:
        return {}
    parts = body.get("parts") if isinstance(body, dict) else None
    if not isinstance(parts, dict):
        return {}
    return {
        str(name): str(part.get("error") or "")[:200]
        for name, part in parts.items()
        if isinstance(part, dict) and part.get("ready") is False
    }


def _health_detail(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    return json.dumps(body, separators=(",", ":"))[:200]
