"""MCP server URLs the user's token may go to: https anywhere, plain http only on loopback; their canonical form and
origin; and the ``OBO_CONSOLE_TRUSTED_MCP_URLS`` setting's parser (settings validate it, ``mcp_trust`` applies it).

Light to import (standard library only), so settings can validate without loading the server link.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from mcp_server.errors import UserError

SETTING = "OBO_CONSOLE_TRUSTED_MCP_URLS"
_DEFAULT_PORTS = {"http": 80, "https": 443}


def is_loopback_host(host: str | None) -> bool:
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def validate_mcp_url(url: str) -> str:
    """The URL, normalised, if the user's token may go there: https anywhere, plain http only on loopback."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        raise UserError(
            f"Not an MCP server URL: {url!r}.",
            hint="Give a full URL such as https://mcp.example.com/mcp or http://127.0.0.1:8000/mcp.",
        )
    if parts.username or parts.password:
        raise UserError(f"The MCP server URL must not carry credentials: {parts.hostname}.")
    if scheme == "http" and not is_loopback_host(parts.hostname):
        raise UserError(
            f"Refusing plain http to {parts.hostname}: your access token would travel unencrypted.",
            hint="Use https, or http only on loopback (127.0.0.1, ::1, localhost).",
        )
    path = parts.path.rstrip("/") or ""
    return urlunsplit((scheme, parts.netloc.lower(), path, parts.query, ""))


def canonical_url(url: str) -> str:
    """``url`` in the form two spellings of one URL share: lowercase scheme and host, no default port, no
    fragment, no trailing slash. Anything that is not an absolute URL comes back stripped, so it matches nothing."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return url.strip()
    scheme = parts.scheme.lower()
    if not scheme or not parts.hostname:
        return url.strip()
    return urlunsplit(
        (scheme, _netloc(scheme, parts.hostname, port), parts.path.rstrip("/"), parts.query, "")
    )


def origin_of(url: str) -> str:
    """The origin (scheme://host[:port]) of an absolute URL, canonical as in ``canonical_url``."""
    parts = urlsplit(canonical_url(url))
    return urlunsplit((parts.scheme, parts.netloc, "", "", ""))


def _netloc(scheme: str, host: str, port: int | None) -> str:
    shown = f"[{host}]" if ":" in host else host.lower()
    return shown if port is None or port == _DEFAULT_PORTS.get(scheme) else f"{shown}:{port}"


def trusted_setting_origins(urls: Iterable[Any]) -> list[str]:
    """The origins ``OBO_CONSOLE_TRUSTED_MCP_URLS`` lists; ``ValueError`` naming the entry that is not a usable URL."""
    origins = []
    for index, url in enumerate(urls):
        if not isinstance(url, str):
            raise ValueError(f"{SETTING}[{index}] is {url!r}, not a URL string")
        try:
            checked = validate_mcp_url(url)  # https, or plain http on loopback only; no credentials
        except UserError as exc:
            raise ValueError(f"{SETTING}[{index}] ({url!r}): {exc.message}") from None
        origins.append(origin_of(checked))
    return origins


def parse_trusted_urls(value: Any) -> list[str]:
    """The setting's value as a list of URLs (env and .env give a JSON string). ``ValueError`` says what is wrong."""
    example = f"{SETTING}='[\"https://mcp.example.com/mcp\"]'"
    if isinstance(value, str):
        if not value.strip():
            return []
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise ValueError(
                f"{SETTING} is not valid JSON ({exc.msg} at character {exc.pos}); it must be a JSON list of URLs, "
                f"e.g. {example}"
            ) from None
    if not isinstance(value, list | tuple):
        raise ValueError(
            f"{SETTING} must be a JSON list of URLs, e.g. {example}; got a {type(value).__name__}"
        )
    trusted_setting_origins(value)
    return [str(url) for url in value]
