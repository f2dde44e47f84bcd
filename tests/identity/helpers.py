"""Helpers for the identity tests: MSAL apps against the platform, device flows, Entra error shape checks."""

from __future__ import annotations

import re
import threading
from typing import Any

import msal
import requests

from mcp_server.localcloud.identity.device_page import complete_device_code
from mcp_server.localcloud.identity.platform import IdentityPlatform

ENVELOPE_TAIL = re.compile(
    r"\r\nTrace ID: (?P<trace>[0-9a-f-]{36})\r\nCorrelation ID: (?P<corr>[0-9a-f-]{36})"
    r"\r\nTimestamp: (?P<ts>\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ)$"
)


def public_app(platform: IdentityPlatform, session: requests.Session) -> msal.PublicClientApplication:
    """A fresh MSAL public client (fresh: MSAL replays an HTTP 400 for 60 s within one app)."""
    return msal.PublicClientApplication(
        platform.console_client_id,
        authority=platform.authority,
        instance_discovery=False,
        http_client=session,
        token_cache=msal.SerializableTokenCache(),
    )


def api_app(
    platform: IdentityPlatform, session: requests.Session, secret: str | None = None
) -> msal.ConfidentialClientApplication:
    value = secret if secret is not None else platform.tenant.api_app.client_secret.get_secret_value()  # type: ignore[union-attr]
    return msal.ConfidentialClientApplication(
        platform.api_client_id,
        client_credential=value,
        authority=platform.authority,
        instance_discovery=False,
        http_client=session,
        token_cache=msal.SerializableTokenCache(),
    )


def device_flow_sign_in(
    platform: IdentityPlatform,
    app: msal.PublicClientApplication,
    login: str,
    *,
    scopes: list[str] | None = None,
) -> dict[str, Any]:
    """A full device-code sign-in: MSAL polls in a thread while the form is POSTed, as a person would."""
    flow = app.initiate_device_flow(scopes=scopes or [platform.api_scope])
    assert "user_code" in flow, flow
    result: dict[str, Any] = {}
    poller = threading.Thread(target=lambda: result.update(app.acquire_token_by_device_flow(flow)))
    poller.start()
    try:
        complete_device_code(
            flow["verification_uri"], flow["user_code"], login, ca_cert=platform.ca_cert_path
        )
    finally:
        poller.join(timeout=30)
    assert not poller.is_alive(), "MSAL kept polling after the code was approved"
    return result


def assert_entra_error(
    body: dict[str, Any], error: str, code: int, *, correlation_id: str | None = None
) -> None:
    """``body`` is Entra's error envelope for ``error``/AADSTS``code``, with consistent trace data."""
    assert body["error"] == error, body
    assert body["error_codes"] == [code], body
    description = body["error_description"]
    assert description.startswith(f"AADSTS{code}: "), description
    tail = ENVELOPE_TAIL.search(description)
    assert tail, f"no Trace ID / Correlation ID / Timestamp tail in {description!r}"
    assert tail["trace"] == body["trace_id"]
    assert tail["corr"] == body["correlation_id"]
    assert tail["ts"] == body["timestamp"]
    assert body["error_uri"].endswith(f"/error?code={code}")
    if correlation_id is not None:
        assert body["correlation_id"] == correlation_id


SEARCH_SCOPE = "https://search.azure.com/.default"


def obo_form(platform: IdentityPlatform, assertion: str, /, **overrides: str | None) -> dict[str, str]:
    """The API app's OBO form for Azure AI Search; an override of None leaves that field out."""
    secret = platform.tenant.api_app.client_secret.get_secret_value()  # type: ignore[union-attr]
    form: dict[str, str | None] = {
        "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
        "client_id": platform.api_client_id,
        "client_secret": secret,
        "assertion": assertion,
        "scope": SEARCH_SCOPE,
        "requested_token_use": "on_behalf_of",
    }
    form.update(overrides)
    return {k: v for k, v in form.items() if v is not None}


def post_obo(
    session: requests.Session, platform: IdentityPlatform, assertion: str, /, **overrides: str | None
) -> requests.Response:
    return session.post(platform.token_endpoint, data=obo_form(platform, assertion, **overrides))
