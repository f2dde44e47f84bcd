"""The app factory: one ``OboServer`` per configuration, serving ``/mcp`` (stateless streamable HTTP, so replicas
can sit behind a load balancer), RFC 9728 metadata, ``/healthz`` and ``/metrics`` on one port."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx2
from fastmcp import FastMCP
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp

from mcp_server.redact import remember_secret
from mcp_server.server.auth import (
    AuthFailureCounter,
    EntraTokenVerifier,
    authority_http_client,
    build_auth_provider,
)
from mcp_server.server.config import ServerConfig
from mcp_server.server.diagnostics import PATH as DIAGNOSTICS_PATH
from mcp_server.server.diagnostics import OboDiagnostic
from mcp_server.server.documents import DocumentSearch, SearchFailed
from mcp_server.server.groups import GraphGroups
from mcp_server.server.health import PROBE_TIMEOUT, Health, on_own_thread
from mcp_server.server.metrics import ServerMetrics
from mcp_server.server.obo import OboError, OboExchanger
from mcp_server.server.obo_cache import build_obo_cache
from mcp_server.server.tool import register_get_documents


class OboServer:
    """Everything one server instance owns: metrics, the OBO exchanger and cache, the search client.

    ``asgi_app(base_url)`` builds the HTTP app once the public base URL (and so the port) is known. ``clock``
    (monotonic seconds) times the JWKS cache.
    """

    def __init__(self, config: ServerConfig, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self.clock = clock
        # The secrets this server holds: masked in every log line and error it may write from now on.
        remember_secret(config.api_client_secret)
        remember_secret(config.search_api_key)
        self.metrics = ServerMetrics()
        self.exchanger = OboExchanger(config)
        self.cache = build_obo_cache(config, self.metrics)
        self.search = DocumentSearch(config)
        self.graph = GraphGroups(config)
        self.http_client: httpx2.AsyncClient | None = None
        self.verifier: EntraTokenVerifier | None = None
        self.mcp: FastMCP | None = None
        self._obo_probe = on_own_thread(self.exchanger.app)
        self._search_probe = on_own_thread(lambda: self.search.probe(2 * PROBE_TIMEOUT))
        self.health_probe = Health(
            {
                "mcp": self._check_mcp,
                "jwks": self._check_jwks,
                "obo": self._check_obo,
                "search": self._check_search,
                "obo_cache": self.cache.health,
            }
        )

    def asgi_app(self, base_url: str | None = None) -> ASGIApp:
        base = (base_url or self.config.base_url()).rstrip("/")
        self.http_client = authority_http_client(self.config)
        auth = build_auth_provider(self.config, self.metrics, base, self.http_client, clock=self.clock)
        assert isinstance(auth.token_verifier, EntraTokenVerifier)
        self.verifier = auth.token_verifier

        @asynccontextmanager
        async def lifespan(_: FastMCP) -> AsyncIterator[dict[str, Any]]:
            try:
                yield {}
            finally:  # keep-alive connections to the authority would stall its graceful shutdown
                await self.search.aclose()  # the async clients' pools belong to this loop
                await self.cache.aclose()
                await self.aclose()

        mcp = FastMCP(
            "OBO Console", auth=auth, lifespan=lifespan, instructions="Documents the signed-in user may read."
        )
        register_get_documents(
            mcp,
            exchanger=self.exchanger,
            cache=self.cache,
            search=self.search,
            metrics=self.metrics,
            graph=self.graph,
        )

        @mcp.custom_route("/healthz", methods=["GET"])
        async def healthz(request: Request) -> Response:
            ready, body = await self.health_probe.report()
            return JSONResponse(body, status_code=200 if ready else 503)

        metadata_url = f"{base}/.well-known/oauth-protected-resource{self.config.mcp_path}"
        diagnostic = OboDiagnostic(self.config, self.verifier, self.exchanger, metadata_url)
        mcp.custom_route(DIAGNOSTICS_PATH, methods=["GET"])(diagnostic.handle)

        @mcp.custom_route("/metrics", methods=["GET"])
        async def metrics(request: Request) -> Response:
            body, content_type = self.metrics.exposition()
            return Response(body, media_type=content_type)

        self.mcp = mcp
        return mcp.http_app(
            path=self.config.mcp_path,
            stateless_http=True,
            middleware=[Middleware(AuthFailureCounter, metrics=self.metrics, mcp_path=self.config.mcp_path)],
        )

    async def health(self) -> tuple[bool, dict[str, Any]]:
        """Ready only when every part is: the authority's JWKS, the OBO client (authority discovery), the index."""
        ready, body = await self.health_probe.report()
        return ready, body["parts"]

    async def _check_mcp(self) -> dict[str, Any]:
        return {"ready": True}

    async def _check_jwks(self) -> dict[str, Any]:
        assert self.http_client is not None
        try:
            response = await self.http_client.get(self.config.jwks_uri, timeout=2 * PROBE_TIMEOUT)
            response.raise_for_status()
            keys = len(response.json().get("keys", []))
            return {"ready": keys > 0, "keys": keys}
        except (httpx2.HTTPError, ValueError) as exc:
            return {"ready": False, "error": f"JWKS unreachable ({type(exc).__name__})"}

    async def _check_obo(self) -> dict[str, Any]:
        try:
            await self._obo_probe()
            return {"ready": True, "authority": self.config.authority}
        except OboError as exc:
            return {"ready": False, "error": exc.cause}

    async def _check_search(self) -> dict[str, Any]:
        try:
            count = await self._search_probe()
            # The whole index's total ($count): the server credential's view, never what any user may read.
            return {"ready": True, "index": self.config.search_index, "index_documents": count}
        except SearchFailed as exc:
            return {"ready": False, "index": self.config.search_index, "error": str(exc)}

    async def aclose(self) -> None:
        if self.http_client is not None:
            await self.http_client.aclose()
        self.exchanger.close()
        self.search.close()
        self.graph.close()


def create_server(config: ServerConfig, *, clock: Callable[[], float] = time.monotonic) -> OboServer:
    return OboServer(config, clock=clock)
