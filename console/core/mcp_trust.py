"""Which MCP servers reached through ``--connect`` may receive the user's token.

Protected-resource metadata (RFC 9728) is public: anyone can serve a copy of a real server's document, so passing
the metadata check proves nothing about who answers. A ``--connect`` server gets the token only when

1. its metadata's ``resource`` is exactly the URL the console connects to (RFC 9728 §3.3; ``check_resource``), and
2. its origin is trusted: the server the local stack's state file or the settings name (implicitly), an origin
   listed in ``OBO_CONSOLE_TRUSTED_MCP_URLS``, or one a person confirmed in the console after being shown the
   origin and the token's audience. Confirmations and refusals are remembered per origin in
   ``trusted-mcp-origins.json`` in the data directory (mode 0600, replaced atomically).

Headless commands never ask: an origin not trusted yet is refused, naming the setting to add.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from console.core.atomic import write_private
from console.core.errors import UserError
from console.core.paths import data_dir
from console.core.server_checks import validate_mcp_url
from console.core.settings import Settings
from console.core.stack_state import StateFileError, read_state

SETTING = "OBO_CONSOLE_TRUSTED_MCP_URLS"
STORE_NAME = "trusted-mcp-origins.json"
_DEFAULT_PORTS = {"http": 80, "https": 443}


# ---------------------------------------------------------------------------------------------------------------
# URLs


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


# ---------------------------------------------------------------------------------------------------------------
# Refusals


class OriginRefused(UserError):
    """The console refused to send the token. ``rule`` names the rule that refused it (tests and logs)."""

    def __init__(self, message: str, *, rule: str, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.rule = rule


def check_resource(resource: Any, url: str) -> None:
    """RFC 9728 §3.3: the metadata's ``resource`` must be the URL the client connects to. A copy of another
    server's document names that server, so it is refused here."""
    if not isinstance(resource, str) or not resource.strip():
        raise OriginRefused(
            f"Refusing to connect to {url}: its protected-resource metadata names no resource. RFC 9728 §3.3 "
            "requires the resource to be the URL you connect to. No token was sent.",
            rule="resource-mismatch",
            hint="Connect to the exact URL the server's metadata names as its resource.",
        )
    if canonical_url(resource) != canonical_url(url):
        raise OriginRefused(
            f"Refusing to connect to {url}: its protected-resource metadata names the resource {resource}, not "
            "the URL you connect to (RFC 9728 §3.3; metadata copied from another server names that server). "
            "No token was sent.",
            rule="resource-mismatch",
            hint="Connect to the exact URL the server's metadata names as its resource, if you trust that server.",
        )


# ---------------------------------------------------------------------------------------------------------------
# Remembered decisions


@dataclass(frozen=True)
class Decision:
    """What a person answered for an origin, and for which token audience."""

    trusted: bool
    audience: str
    decided_at: str


class TrustStore:
    """``trusted-mcp-origins.json``: ``{"origins": {origin: {"trusted", "audience", "decided_at"}}}``."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or data_dir() / STORE_NAME

    def _load(self) -> dict[str, Any]:
        try:
            raw = self.path.read_text()
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise UserError(f"Cannot read {self.path}: {exc.strerror or exc}.") from exc
        try:
            origins = json.loads(raw).get("origins", {})
        except (json.JSONDecodeError, AttributeError):
            origins = None
        if not isinstance(origins, dict):
            raise UserError(
                f"{self.path} (the MCP origins you trusted or refused) is not valid.",
                hint="Fix it or delete it; the console then asks again about each origin.",
            )
        return origins

    def decision(self, origin: str) -> Decision | None:
        entry = self._load().get(origin)
        if not isinstance(entry, dict) or not isinstance(entry.get("trusted"), bool):
            return None
        return Decision(entry["trusted"], str(entry.get("audience", "")), str(entry.get("decided_at", "")))

    def remember(self, origin: str, *, trusted: bool, audience: str) -> None:
        origins = self._load()  # read again just before writing: another console may have added an origin
        origins[origin] = {
            "trusted": trusted,
            "audience": audience,
            "decided_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        write_private(
            self.path, json.dumps({"version": 1, "origins": origins}, indent=2, sort_keys=True) + "\n"
        )


# ---------------------------------------------------------------------------------------------------------------
# The rule


@dataclass(frozen=True)
class TrustRequest:
    """What a person is shown before deciding whether ``origin`` may receive their token."""

    url: str
    origin: str
    audience: str  # the API the token is for (its ``aud``), e.g. api://<api client id>
    authority: str


# True: trust (remembered); False: refuse (remembered); None: no answer (the console closed): refused, not remembered.
TrustPrompt = Callable[[TrustRequest], bool | None]


def implicit_origins(settings: Settings) -> set[str]:
    """Origins trusted without asking: the MCP server the local stack's state file names (local mode) and the one
    the settings name (an explicit ``OBO_CONSOLE_MCP_URL``; in Azure mode the configured server)."""
    urls: list[str] = []
    if settings.mode == "local":
        try:
            state = read_state(settings.effective_state_file())
        except StateFileError:
            state = None
        if state is not None and state.mcp_url:
            urls.append(state.mcp_url)
        if settings.mcp_url:
            urls.append(settings.mcp_url)
    else:
        urls.append(settings.effective_mcp_url())
    return {origin_of(url) for url in urls}


def require_trusted(
    url: str,
    *,
    settings: Settings,
    audience: str,
    authority: str,
    prompt: TrustPrompt | None = None,
    store: TrustStore | None = None,
) -> str:
    """Return why ``url``'s origin may receive the token, or raise ``OriginRefused`` (nothing is sent then).

    Asks ``prompt`` (a person, in the console) only when no rule decides; headless callers pass none."""
    origin = origin_of(url)
    if origin in implicit_origins(settings):
        return "the MCP server this console is configured with"
    if origin in trusted_setting_origins(settings.trusted_mcp_urls):
        return f"listed in {SETTING}"
    store = store or TrustStore()
    remembered = store.decision(origin)
    if remembered is not None and remembered.audience == audience:
        if remembered.trusted:
            return f"you trusted it on {remembered.decided_at}"
        raise OriginRefused(
            f"Refusing to connect to {url}: you declined to send your token to {origin} on "
            f"{remembered.decided_at}. Nothing was sent.",
            rule="declined",
            hint=f"To be asked again, remove {origin} from {store.path}; or list it in {SETTING}.",
        )
    if prompt is None:
        other = (
            f" (you answered for tokens for {remembered.audience}, not {audience})"
            if remembered is not None
            else ""
        )
        raise OriginRefused(
            f"Refusing to connect to {url}: {origin} is not a trusted MCP origin{other}, and only origins you "
            "trust receive your token (anyone can copy a server's public metadata). Nothing was sent.",
            rule="untrusted-origin",
            hint=f"If you trust it, add it to {SETTING}, e.g. {SETTING}='[\"{url}\"]', or confirm it once in the "
            f"full-screen console (obo-console --connect {url}).",
        )
    answer = prompt(TrustRequest(url=url, origin=origin, audience=audience, authority=authority))
    if answer is None:
        raise OriginRefused(
            f"Refusing to connect to {url}: nobody confirmed that {origin} may receive your token. Nothing was sent.",
            rule="unanswered",
            hint=f"Start the console again and answer, or list the origin in {SETTING}.",
        )
    if not answer:
        with contextlib.suppress(OSError):  # refused either way; an unwritable file only means asking again
            store.remember(origin, trusted=False, audience=audience)
        raise OriginRefused(
            f"Refusing to connect to {url}: you declined to send your token to {origin}. Nothing was sent.",
            rule="declined",
            hint=f"Your answer is remembered in {store.path}; remove the origin there to be asked again.",
        )
    try:
        store.remember(origin, trusted=True, audience=audience)
    except OSError as exc:  # the person said yes: connect, and say the answer will be asked again next time
        return f"you confirmed it (not remembered: {exc.strerror or exc})"
    return "you confirmed it"


def headless_connect(settings: Settings, url: str) -> tuple[str, bool | str]:
    """``--connect`` for a headless command: every rule above, no prompt. Returns (the URL tokens may go to, what
    TLS should trust there); raises ``UserError`` (an ``OriginRefused`` naming the setting to add) otherwise."""
    from console.core.server_link import ServerLink

    link = ServerLink(settings, connect_url=url, launch=False)
    try:
        link.start()
        accepted = link.mcp_url
        assert accepted is not None  # start() returns only once a server was accepted
        return accepted, link.tls_verify
    finally:
        link.close()  # a one-shot command does not watch the server
