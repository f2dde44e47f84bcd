"""Fixtures of the search tests: a service trusting the tests' own signing key (independent of the identity
platform), with a directory the tests control."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from mcp_server.localcloud.search.auth import EntraTokenValidator
from mcp_server.localcloud.search.service import SearchService
from tests.search.helpers import ISSUER, TENANT, Signer


class Directory:
    """Group memberships by oid; ``fail`` makes lookups fail like an unreachable Microsoft Graph."""

    def __init__(self) -> None:
        self.groups: dict[str, list[str]] = {}
        self.fail = False
        self.calls: list[tuple[str, str]] = []

    def __call__(self, tenant_id: str, oid: str) -> list[str] | None:
        self.calls.append((tenant_id, oid))
        if self.fail:
            raise ConnectionError("graph unavailable")
        if tenant_id != TENANT:
            return None
        return self.groups.get(oid, [])


@pytest.fixture(scope="module")
def signer() -> Signer:
    return Signer()


@pytest.fixture(scope="module")
def directory() -> Directory:
    return Directory()


@pytest.fixture(scope="module")
def own_search(
    tmp_path_factory: pytest.TempPathFactory, signer: Signer, directory: Directory
) -> Iterator[SearchService]:
    """A started service trusting ``signer``'s key (issuer ``ISSUER``), with ``directory`` as its Graph."""
    service = SearchService(
        Path(tmp_path_factory.mktemp("own-search")),
        secrets.token_urlsafe(24),
        EntraTokenValidator(signer.jwks, issuers={ISSUER}),
        directory,
    )
    service.start()
    try:
        yield service
    finally:
        service.stop()
