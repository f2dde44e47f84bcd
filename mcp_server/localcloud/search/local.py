"""Wiring the search service to the local identity platform: its JWKS, its issuers, its tenant directory."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import SecretStr

from .app import Directory
from .auth import EntraTokenValidator
from .service import SearchService

if TYPE_CHECKING:
    from mcp_server.localcloud.identity.platform import IdentityPlatform
    from mcp_server.localcloud.tenant import Tenant


def tenant_directory(tenant: Tenant) -> Directory:
    """The group lookup the service does (Microsoft Graph for Azure AI Search): the tenant's memberships.

    A tenant other than the platform's has no directory here: None, so the query fails rather than widens.
    """

    def groups(tenant_id: str, oid: str) -> list[str] | None:
        if tenant_id != tenant.tenant_id:
            return None
        return tenant.groups_of(oid)

    return groups


def platform_validator(platform: IdentityPlatform) -> EntraTokenValidator:
    """Tokens signed by the platform's keys (read in-process), issued for its tenant (v1 and v2 issuers)."""
    return EntraTokenValidator(platform.jwks, issuers={platform.v1_issuer, platform.issuer})


def search_service_for(
    platform: IdentityPlatform, data_dir: Path, api_key: SecretStr | str, *, port: int = 0
) -> SearchService:
    """A (not yet started) search service trusting ``platform``, as the local stack runs it."""
    return SearchService(
        data_dir,
        api_key,
        platform_validator(platform),
        tenant_directory(platform.tenant),
        port=port,
        roles_of=platform.tenant.search_roles_of,  # keyless callers: the tenant file's role assignments
    )
