"""Doctor checks of the MCP server: reachable with metadata matching the settings, the OBO exchange, the clock."""

from __future__ import annotations

import time
from typing import Any

import httpx2

from console.core.doctor.model import Check, CheckFailed, Doctor, failed_with_code

TIMEOUT = 30.0
CLOCK_TOLERANCE = 300.0  # seconds Entra and Azure AI Search accept between token times and their clocks


def _base(doctor: Doctor) -> str:
    url = doctor.target.mcp_url or ""
    return url.rstrip("/").removesuffix("/mcp")


def mcp_server(doctor: Doctor) -> str:
    url = doctor.target.mcp_url
    fix = "Start the MCP server (`obo-console server`) or set OBO_CONSOLE_MCP_URL to where it runs."
    if not url:
        raise CheckFailed("no MCP server URL is configured", fix)
    path = url.rstrip("/").split("/", 3)[-1] if url.count("/") > 2 else ""
    metadata_url = f"{_base(doctor)}/.well-known/oauth-protected-resource/{path}"
    try:
        response = httpx2.get(metadata_url, timeout=TIMEOUT, trust_env=False)
        metadata: dict[str, Any] = response.json() if response.status_code == 200 else {}
    except (httpx2.HTTPError, ValueError) as exc:
        raise CheckFailed(f"the MCP server at {url} is unreachable ({type(exc).__name__})", fix) from None
    if not metadata:
        raise CheckFailed(f"{metadata_url} answered HTTP {response.status_code}", fix)
    issuer = f"{doctor.target.authority}/v2.0"
    problems = []
    if str(metadata.get("resource", "")).rstrip("/") != url.rstrip("/"):
        problems.append(f"resource is {metadata.get('resource')}, not {url}")
    if issuer not in [str(s).rstrip("/") for s in metadata.get("authorization_servers", [])]:
        problems.append(f"authorization_servers {metadata.get('authorization_servers')} lack {issuer}")
    if doctor.target.api_scope not in metadata.get("scopes_supported", []):
        problems.append(f"scopes_supported {metadata.get('scopes_supported')} lack {doctor.target.api_scope}")
    if problems:
        raise CheckFailed(
            "the server's protected-resource metadata does not match the settings: " + "; ".join(problems),
            "Give the server and the console the same tenant, API client id and URL (OBO_CONSOLE_TENANT_ID, "
            "OBO_CONSOLE_API_CLIENT_ID, OBO_CONSOLE_MCP_URL).",
        )
    return f"{url}: metadata names {issuer} and {doctor.target.api_scope}"


def obo(doctor: Doctor) -> str:
    """The server's diagnostic path exchanges the user's token and reports claims (never a token)."""
    assert doctor.found.token is not None
    url = f"{_base(doctor)}/diagnostics/obo"
    headers = {"Authorization": f"Bearer {doctor.found.token.get_secret_value()}"}
    try:
        response = httpx2.get(url, headers=headers, timeout=TIMEOUT, trust_env=False)
        body: dict[str, Any] = response.json()
    except (httpx2.HTTPError, ValueError) as exc:
        raise CheckFailed(
            f"{url} did not answer ({type(exc).__name__})", "Update and restart the MCP server."
        ) from None
    if response.status_code in (401, 403):
        raise CheckFailed(
            f"the MCP server refused the signed-in token: {body.get('error_description')}",
            "Sign in again; check the server and console use the same tenant and API (OBO_CONSOLE_API_CLIENT_ID).",
        )
    if not body.get("ok"):
        raise failed_with_code(
            f"the on-behalf-of exchange failed: {body.get('error')}",
            body.get("aadsts"),
            "Check the API app registration's secret and its Azure AI Search permission (API permissions).",
        )
    claims = body.get("obo_claims") or {}
    doctor.found.obo_claims = claims
    return f"exchanged for {body.get('scope')}: aud {claims.get('aud')}, scp {claims.get('scp')}, oid {claims.get('oid')}"


def clock(doctor: Doctor) -> str:
    """The identity platform's clock against this machine's, read from the token it just issued (OBO)."""
    claims, now = doctor.found.obo_claims, time.time()
    issued = float(claims.get("iat", now))
    offset = issued - now
    if abs(offset) > CLOCK_TOLERANCE:
        direction = "ahead of" if offset > 0 else "behind"
        raise CheckFailed(
            f"the identity platform's clock is {abs(offset):.0f} s {direction} this machine's (tolerance "
            f"{CLOCK_TOLERANCE:.0f} s): its tokens are not yet valid, or already expired, for Azure AI Search",
            "Sync the clocks (Settings > Time & language > Sync now; `timedatectl set-ntp true`) on this machine "
            "and the server's host.",
        )
    return f"the identity platform's clock is within {abs(offset):.0f} s of this machine's"


CHECKS = [
    Check("mcp_server", "the MCP server reachable, its metadata matching the settings", mcp_server),
    Check("obo", "an OBO exchange through the server", obo, needs=("token", "mcp_server")),
    Check("clock", "clock skew within tolerance", clock, needs=("obo",)),
]
