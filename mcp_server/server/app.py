"""The app factory: one ``OboServer`` per configuration, serving ``/mcp`` (stateless streamable HTTP, so replicas
can sit behind a load balancer), RFC 9728 metadata, ``/healthz`` and ``/metrics`` on one port."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx2
from fastmcp import FastMCP
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp

from console.core.redact import remember_secret
from mcp_server.server.auth import (
    AuthFailureCounter,
    EntraTokenVerifier,
    authority_http_client,
    build_auth_provider,
)
from mcp_server.server.config import ServerConfig
from mcp_server.server.documents import DocumentSearch, SearchFailed
from mcp_server.server.metrics import ServerMetrics
from mcp_server.server.obo import OboCache, OboError, OboExchanger
from mcp_server.server.tool import register_get_documents

HEALTH_TTL = 2.0  # seconds a readiness answer is reused, so probes never hammer the dependencies


class OboServer:
    """Everything one server instance owns: metrics, the OBO exchanger and cache, the search client.

    ``asgi_app(base_url)`` builds the HTTP app once the public base URL (and so the port) is known.
    """

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        # The secrets this server holds: masked in every log line and error it may write from now on.
        remember_secret(config.api_client_secret)
        remember_secret(config.search_api_key)
        self.metrics = ServerMetrics()
        self.exchanger = OboExchanger(config)
        self.cache = OboCache(margin=config.obo_expiry_margin)
        self.search = DocumentSearch(config)
        self.http_client: httpx2.AsyncClient | None = None
        self.verifier: EntraTokenVerifier | None = None
        self.mcp: FastMCP | None = None
        self._health: tuple[float, bool, dict[str, Any]] | None = None

    def asgi_app(self, base_url: str | None = None) -> ASGIApp:
        base = (base_url or self.config.base_url()).rstrip("/")
        self.http_client = authority_http_client(self.config)
        auth = build_auth_provider(self.config, self.metrics, base, self.http_client)
        assert isinstance(auth.token_verifier, EntraTokenVerifier)
        self.verifier = auth.token_verifier
        @asynccontextmanager
        async def lifespan(_: FastMCP) -> AsyncIterator[dict[str, Any]]:
            try:
                yield {}
            finally:  # keep-alive connections to the authority would stall its graceful shutdown
                await self.aclose()

        mcp = FastMCP(
            "OBO Console", auth=auth, lifespan=lifespan, instructions="Documents the signed-in user may read."
        )
        register_get_documents(
            mcp, exchanger=self.exchanger, cache=self.cache, search=self.search, metrics=self.metrics
        )

        @mcp.custom_route("/healthz", methods=["GET"])
        async def healthz(request: Request) -> Response:
            ready, parts = await self.health()
            return JSONResponse({"status": "ready" if ready else "unavailable", "parts": parts},
                                status_code=200 if ready else 503)

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
        now = time.monotonic()
        if self._health is not None and now - self._health[0] < HEALTH_TTL:
            return self._health[1], self._health[2]
        parts = {
            "mcp": {"ready": True},
            "jwks": await self._check_jwks(),
            "obo": await self._check_obo(),
            "search": await self._check_search(),
        }
        ready = all(p["ready"] for p in parts.values())
        self._health = (now, ready, parts)
        return ready, parts

    async def _check_jwks(self) -> dict[str, Any]:
        assert self.http_client is not None
        try:
            response = await self.http_client.get(self.config.jwks_uri)
            response.raise_for_status()
            keys = len(response.json().get("keys", []))
            return {"ready": keys > 0, "keys": keys}
        except (httpx2.HTTPError, ValueError) as exc:
            return {"ready": False, "error": f"JWKS unreachable ({type(exc).__name__})"}

    async def _check_obo(self) -> dict[str, Any]:
        try:
            await anyio.to_thread.run_sync(self.exchanger.app)
            return {"ready": True, "authority": self.config.authority}
        except OboError as exc:
            return {"ready": False, "error": exc.cause}

    async def _check_search(self) -> dict[str, Any]:
        try:
            count = await anyio.to_thread.run_sync(self.search.ping)
            return {"ready": True, "index": self.config.search_index, "documents": count}
        except SearchFailed as exc:
            return {"ready": False, "index": self.config.search_index, "error": str(exc)}

    async def aclose(self) -> None:
        if self.http_client is not None:
            await self.http_client.aclose()
        self.exchanger.close()
        self.search.close()


def create_server(config: ServerConfig) -> OboServer:
    return OboServer(config)
