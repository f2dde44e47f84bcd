"""Doctor checks of search: the service and its key, the index's permission filtering, the api-version, and a
permission-trimmed query as the signed-in user (through the MCP server's tool, as the agents make it)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx2
from fastmcp import Client
from fastmcp.client import StreamableHttpTransport

from console.core.doctor.model import Check, CheckFailed, Doctor
from mcp_server import search_versions

TIMEOUT = 15.0
# Document-level access (permissionFilter fields, x-ms-query-source-authorization) exists from this preview on.
FIRST_VERSION_WITH_ACCESS = min(search_versions.PERMISSION_API_VERSIONS)


def search_api_version(doctor: Doctor) -> str:
    """The api-version the MCP server sends: ``OBO_CONSOLE_SEARCH_API_VERSION``, else azure-search-documents'
    default."""
    return doctor.settings.search_api_version or search_versions.SDK_DEFAULT_API_VERSION


def _get(doctor: Doctor, path: str) -> httpx2.Response:
    target = doctor.target
    headers = {"api-key": target.search_api_key.get_secret_value()} if target.search_api_key else {}
    url = f"{(target.search_endpoint or '').rstrip('/')}{path}"
    params = {"api-version": search_api_version(doctor)}
    return httpx2.get(url, params=params, headers=headers, timeout=TIMEOUT, trust_env=False)


def search_service(doctor: Doctor) -> str:
    target = doctor.target
    if not target.search_endpoint:
        raise CheckFailed(
            "no search endpoint is configured",
            "Set OBO_CONSOLE_SEARCH_ENDPOINT (Azure portal > your search service > Overview > Url).",
        )
    if target.search_api_key is None:
        return f"{target.search_endpoint}: no admin key configured; the server's role is checked by the query"
    try:
        response = _get(doctor, "/indexes?$select=name")
    except httpx2.HTTPError as exc:
        raise CheckFailed(
            f"the search service at {target.search_endpoint} is unreachable ({type(exc).__name__})",
            "Start the search service (local mode: restart `obo-console server`; Azure: portal > the search "
            "service > Overview: status Running) and check OBO_CONSOLE_SEARCH_ENDPOINT.",
        ) from None
    if response.status_code in (401, 403):
        raise CheckFailed(
            f"the search service refused the configured admin key (HTTP {response.status_code})",
            "Azure portal > the search service > Settings > Keys: copy the current Primary admin key into "
            "OBO_CONSOLE_SEARCH_API_KEY and restart the MCP server.",
        )
    if response.status_code == 400:
        version = search_api_version(doctor)
        raise CheckFailed(f"the search service does not accept api-version {version}", _version_fix(doctor))
    if response.status_code != 200:
        raise CheckFailed(
            f"the search service answered HTTP {response.status_code}", "Check OBO_CONSOLE_SEARCH_ENDPOINT."
        )
    return f"{target.search_endpoint}: reachable, the admin key accepted"


def index(doctor: Doctor) -> str:
    name = doctor.target.search_index
    rebuild = (
        "Recreate the index with `oid` (permissionFilter userIds) and `group` (permissionFilter groupIds) and "
        "permissionFilterOption enabled: `obo-console provision` (Azure portal > Indexes > the index > Edit JSON)."
    )
    response = _get(doctor, f"/indexes('{name}')")
    if response.status_code == 404:
        raise CheckFailed(f"the index {name} does not exist", "Create it: `obo-console provision`.")
    definition: dict[str, Any] = response.json()
    kinds = {str(f.get("permissionFilter") or "").lower(): f["name"] for f in definition.get("fields", [])}
    missing = [kind for kind in ("userIds", "groupIds") if kind.lower() not in kinds]
    option = str(definition.get("permissionFilterOption") or "").lower()
    if missing or option != "enabled":
        found = f"no {' or '.join(missing)} permission field" if missing else ""
        found += ("; " if found else "") + (
            "" if option == "enabled" else f"permissionFilterOption is {option or 'unset'}"
        )
        raise CheckFailed(f"the index {name} cannot trim results: {found}", rebuild)
    return f"{name}: permission fields {kinds['userids']} (userIds), {kinds['groupids']} (groupIds), filtering enabled"


def api_version(doctor: Doctor) -> str:
    """The api-version alone, before anything is asked of the service: every later request is sent with it."""
    version = search_api_version(doctor)
    if not search_versions.has_permission_filtering(version):
        raise CheckFailed(f"api-version {version} has no document-level access", _version_fix(doctor))
    return f"api-version {version} supports document-level access"


def _version_fix(doctor: Doctor) -> str:
    if doctor.settings.search_api_version:
        return (
            "Set OBO_CONSOLE_SEARCH_API_VERSION to a preview version with document-level access (from "
            f"{FIRST_VERSION_WITH_ACCESS} on, e.g. {search_versions.SDK_DEFAULT_API_VERSION}), or unset it for the "
            "SDK's default."
        )
    return (
        "Install azure-search-documents==12.1.0b2 (the preview SDK; 12.0.0 GA dropped document-level access)."
    )


def query(doctor: Doctor) -> str:
    """``get_documents("*")`` through the MCP server as the signed-in user; every document must admit them."""
    result = asyncio.run(_call_tool(doctor))
    if result.is_error:
        text = " ".join(getattr(c, "text", "") for c in result.content)
        raise CheckFailed(
            f"the tool failed: {text}", "Fix the check above that names this link; then run doctor again."
        )
    documents = (result.structured_content or {}).get("documents", [])
    claims = doctor.found.claims
    admitted = {str(claims.get("oid")), "all", *(str(g) for g in claims.get("groups") or [])}
    for doc in documents:
        entries = set(doc.get("oid", [])) | set(doc.get("group", []))
        if not entries or not entries <= admitted:  # the server trims to the entries that admit the caller
            raise CheckFailed(
                f"document {doc.get('name')} came back without an entry admitting the user",
                "Check the index's permission fields and the documents' oid/group values (`obo-console provision`).",
            )
    names = ", ".join(str(d.get("name")) for d in documents[:5])
    return f"{len(documents)} document(s) visible to {claims.get('name') or claims.get('oid')}: {names}"


async def _call_tool(doctor: Doctor) -> Any:
    assert doctor.found.token is not None and doctor.target.mcp_url
    headers = {"Authorization": f"Bearer {doctor.found.token.get_secret_value()}"}
    transport = StreamableHttpTransport(url=doctor.target.mcp_url, headers=headers)
    async with Client(transport=transport, timeout=60) as client:
        return await client.call_tool("get_documents", {"query": "*"}, raise_on_error=False)


CHECKS = [
    # First: every request to the service is sent with that api-version, and one without document-level access
    # shows no permission fields (the index would look broken when the version is).
    Check("api_version", "the api-version supports document-level access", api_version),
    Check(
        "search_service",
        "the search endpoint and key, and the service accepts the api-version",
        search_service,
        needs=("api_version",),
    ),
    Check(
        "index", "the index with its permission fields, filtering enabled", index, needs=("search_service",)
    ),
    Check(
        "query",
        "a permission-trimmed query as the signed-in user",
        query,
        needs=("obo", "clock", "search_service", "index", "api_version"),
    ),
]
