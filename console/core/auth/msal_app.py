"""The MSAL public client for the console app: the same code against the local identity platform and Entra ID.

Local mode trusts the local CA explicitly (``verify=<CA>``, ``trust_env=False``: this machine's
REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE would otherwise override ``verify``). Azure mode uses requests' defaults and
never loads the local CA.

MSAL fetches the authority's OpenID discovery document when the app is built, before it even looks at the token
cache. ``DiscoverySession`` (the ``http_client`` MSAL accepts) keeps the last document it fetched on disk and
serves it when the identity platform cannot be reached, so a signed-in user keeps working from cached tokens
until they expire; ``unreachable`` then says why the identity platform was not used.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from pathlib import Path
from typing import Any

import msal
import requests

from console.core.auth.errors import SignInError
from console.core.endpoints import Endpoints
from mcp_server.atomic import write_private

HTTP_TIMEOUT = 30.0
# Discovery is one small GET: an identity platform that does not answer it this fast is treated as unreachable
# (and the saved document is used), rather than stalling every command for HTTP_TIMEOUT.
DISCOVERY_TIMEOUT = 5.0
DISCOVERY_SUFFIX = "/.well-known/openid-configuration"
METADATA_FILE = "identity-metadata.json"
_REQUIRED_KEYS = ("authorization_endpoint", "token_endpoint", "issuer")


def http_session(endpoints: Endpoints) -> requests.Session:
    session = requests.Session()
    _trust(session, endpoints)
    return session


def _trust(session: requests.Session, endpoints: Endpoints) -> None:
    if endpoints.mode == "local" and endpoints.ca_cert is not None:
        session.verify = str(endpoints.ca_cert)
        session.trust_env = False


class DiscoverySession(requests.Session):
    """A requests session for MSAL that remembers discovery documents (public metadata, no tokens) in
    ``metadata_file`` and answers a discovery GET from there when the identity platform is unreachable."""

    def __init__(self, metadata_file: Path | None) -> None:
        super().__init__()
        self.metadata_file = metadata_file
        self.unreachable: str | None = None  # why the saved document was used (None: the platform answered)
        self._lock = threading.Lock()

    def request(self, method: str, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        text_url = url.decode() if isinstance(url, bytes) else str(url)
        if method.upper() != "GET" or not text_url.endswith(DISCOVERY_SUFFIX):
            # MSAL applies its own timeout only to a session it builds itself: never wait forever on this one.
            kwargs["timeout"] = kwargs.get("timeout") or HTTP_TIMEOUT
            return super().request(method, url, *args, **kwargs)
        kwargs["timeout"] = min(float(kwargs.get("timeout") or DISCOVERY_TIMEOUT), DISCOVERY_TIMEOUT)
        saved = self._load().get(text_url)
        try:
            response = super().request(method, url, *args, **kwargs)
        except (requests.ConnectionError, requests.Timeout) as exc:
            if saved is None:
                raise  # never fetched before: nothing to work from
            self.unreachable = _reason(exc)
            return _saved_response(text_url, saved)
        # A gateway's "down for now" (5xx) counts as unreachable too.
        if response.status_code >= 500 and saved is not None:
            self.unreachable = f"HTTP {response.status_code}"
            return _saved_response(text_url, saved)
        self.unreachable = None
        if response.status_code == 200:
            self._save(text_url, response)
        return response

    def _load(self) -> dict[str, Any]:
        if self.metadata_file is None:
            return {}
        try:
            data = json.loads(self.metadata_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}  # missing or unreadable: as if never saved
        return data if isinstance(data, dict) else {}

    def _save(self, url: str, response: requests.Response) -> None:
        if self.metadata_file is None:
            return
        try:
            document = response.json()
        except ValueError:
            return
        if not isinstance(document, dict) or not all(
            isinstance(document.get(k), str) for k in _REQUIRED_KEYS
        ):
            return  # not a discovery document MSAL could use: keep the last good one
        with self._lock:
            saved = self._load()
            if saved.get(url, {}).get("document") == document:
                return  # unchanged: no write on every command
            saved[url] = {"document": document, "saved_at": int(time.time())}
            with contextlib.suppress(OSError):  # a read-only data dir costs only the offline fallback
                write_private(self.metadata_file, json.dumps(saved, indent=2, sort_keys=True))


def _saved_response(url: str, saved: dict[str, Any]) -> requests.Response:
    response = requests.Response()
    response.status_code = 200
    response.url = url
    response.headers["Content-Type"] = "application/json"
    response._content = json.dumps(saved.get("document", {})).encode()
    return response


def _reason(exc: requests.RequestException) -> str:
    kind = "no answer within the time limit" if isinstance(exc, requests.Timeout) else "connection failed"
    return f"{kind} ({type(exc).__name__})"


def msal_session(endpoints: Endpoints, metadata_file: Path | None) -> DiscoverySession:
    """The HTTP client for MSAL: the endpoints' trust settings, discovery documents remembered on disk."""
    session = DiscoverySession(metadata_file)
    _trust(session, endpoints)
    return session


def build_public_client(
    endpoints: Endpoints, cache: msal.TokenCache | None, session: requests.Session | None = None
) -> msal.PublicClientApplication:
    """A PublicClientApplication for the console app (discovery runs here: it makes a network call)."""
    try:
        return msal.PublicClientApplication(
            endpoints.console_client_id,
            authority=endpoints.authority,
            instance_discovery=False,  # no login.microsoftonline.com round trip for the local host; same for Entra
            http_client=session or http_session(endpoints),
            token_cache=cache,
            timeout=HTTP_TIMEOUT,
        )
    except (requests.RequestException, ValueError) as exc:
        raise SignInError(
            f"Cannot reach the identity platform at {endpoints.authority}: {type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''}",
            hint="Is the local stack running (`obo-console server`)? In Azure mode check OBO_CONSOLE_TENANT_ID "
            "and your network.",
        ) from exc
