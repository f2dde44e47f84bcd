"""Entra ID's token-endpoint error envelope (docs/identity.md, Errors): what every failure of the platform
returns.

``{"error", "error_description": "AADSTSnnnn: ...\\r\\nTrace ID: ...\\r\\nCorrelation ID: ...\\r\\nTimestamp: ...",
"error_codes": [n], "timestamp", "trace_id", "correlation_id", "error_uri"}`` (+ ``suberror`` where Entra sends one).
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from starlette.responses import JSONResponse

NO_STORE = {"Cache-Control": "no-store, no-cache", "Pragma": "no-cache"}


class EntraError(Exception):
    """A protocol error answered with Entra's envelope."""

    def __init__(
        self,
        error: str,
        code: int,
        message: str,
        *,
        status: int = 400,
        suberror: str | None = None,
        extra: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(f"AADSTS{code}: {message}")
        self.error = error
        self.code = code
        self.message = message
        self.status = status
        self.suberror = suberror
        self.extra = extra or {}
        self.headers = headers or {}  # e.g. Retry-After on a 429

    def body(self, *, correlation_id: str | None = None, error_uri_base: str | None = None) -> dict[str, Any]:
        now = dt.datetime.now(dt.UTC)
        timestamp = now.strftime("%Y-%m-%d %H:%M:%SZ")
        trace_id = str(uuid.uuid4())
        correlation_id = correlation_id or str(uuid.uuid4())
        body: dict[str, Any] = {
            "error": self.error,
            "error_description": (
                f"AADSTS{self.code}: {self.message}\r\nTrace ID: {trace_id}\r\n"
                f"Correlation ID: {correlation_id}\r\nTimestamp: {timestamp}"
            ),
            "error_codes": [self.code],
            "timestamp": timestamp,
            "trace_id": trace_id,
            "correlation_id": correlation_id,
        }
        if error_uri_base:
            body["error_uri"] = f"{error_uri_base}/error?code={self.code}"
        if self.suberror:
            body["suberror"] = self.suberror
        body.update(self.extra)
        return body

    def response(
        self, *, correlation_id: str | None = None, error_uri_base: str | None = None
    ) -> JSONResponse:
        body = self.body(correlation_id=correlation_id, error_uri_base=error_uri_base)
        headers = dict(NO_STORE)
        headers["x-ms-request-id"] = body["trace_id"]
        if correlation_id:
            headers["client-request-id"] = correlation_id
        if self.status == 401:
            headers["WWW-Authenticate"] = 'Basic realm="local identity platform"'
        headers.update(self.headers)
        return JSONResponse(body, status_code=self.status, headers=headers)


# -- the errors the platform raises, named after what went wrong -------------------------------------------


def missing_parameter(name: str) -> EntraError:
    return EntraError(
        "invalid_request", 900144, f"The request body must contain the following parameter: '{name}'."
    )


def invalid_parameter(name: str, detail: str = "") -> EntraError:
    return EntraError(
        "invalid_request",
        900144 if not detail else 9002313,
        f"The provided value for the input parameter '{name}' is not valid.{(' ' + detail) if detail else ''}",
    )


def unsupported_grant(grant_type: str) -> EntraError:
    return EntraError(
        "unsupported_grant_type", 70003, f"The app requested an unsupported grant type '{grant_type}'."
    )


def resource_parameter() -> EntraError:
    return EntraError("invalid_request", 901002, "The 'resource' request parameter is not supported.")


# Entra's explanation after "not found" for an unknown application or resource principal.
_NOT_INSTALLED = (
    "This can happen if the application has not been installed by the administrator of the tenant or consented to "
    "by any user in the tenant. You might have sent your authentication request to the wrong tenant."
)


def throttled(message: str, retry_after: int) -> EntraError:
    """HTTP 429 + Retry-After, as Entra throttles an app that repeats a request too often. Entra documents the 429
    and AADSTS50196 ("...encountered a loop...") for throttling; the `error` value here is a best guess."""
    return EntraError(
        "temporarily_unavailable",
        50196,
        f"The server terminated an operation because it encountered a loop while processing a request. "
        f"{message} Retry after {retry_after} seconds.",
        status=429,
        headers={"Retry-After": str(retry_after)},
    )


def unknown_client(client_id: str, tenant_id: str) -> EntraError:
    return EntraError(
        "unauthorized_client",
        700016,
        f"Application with identifier '{client_id}' was not found in the directory '{tenant_id}'. {_NOT_INSTALLED}",
    )


def unknown_tenant(tenant: str) -> EntraError:
    return EntraError(
        "invalid_tenant",
        90002,
        f"Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the "
        "correct cloud.",
    )


def missing_client_secret() -> EntraError:
    return EntraError(
        "invalid_client",
        7000218,
        "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
        status=401,
    )


def bad_client_secret(client_id: str) -> EntraError:
    return EntraError(
        "invalid_client",
        7000215,
        "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, "
        f"not the client secret ID, for a secret added to app '{client_id}'.",
        status=401,
    )


def expired_client_secret(client_id: str) -> EntraError:
    return EntraError(
        "invalid_client",
        7000222,
        f"The provided client secret keys for app '{client_id}' are expired. Visit the Azure portal to create new "
        "keys for your app: https://aka.ms/NewClientSecret, or consider using certificate credentials for added "
        "security: https://aka.ms/certCreds.",
        status=401,
    )


def invalid_scope(scope: str, detail: str = "") -> EntraError:
    return EntraError(
        "invalid_scope",
        70011,
        f"The provided request must include a 'scope' input parameter. The provided value for the input "
        f"parameter 'scope' is not valid: '{scope}'.{(' ' + detail) if detail else ''}",
    )


def unknown_resource(resource: str, tenant_id: str) -> EntraError:
    return EntraError(
        "invalid_resource",
        500011,
        f"The resource principal named {resource} was not found in the tenant named {tenant_id}. {_NOT_INSTALLED}",
    )


def consent_required(client_id: str, app_name: str) -> EntraError:
    return EntraError(
        "invalid_grant",
        65001,
        f"The user or administrator has not consented to use the application with ID '{client_id}' named "
        f"'{app_name}'. Send an interactive authorization request for this user and resource.",
        suberror="consent_required",
    )
