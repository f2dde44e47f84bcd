"""``/{tenant}/oauth2/v2.0/authorize``: the authorization-code flow's login page (PKCE S256 only).

GET validates the request: an unknown client or a redirect URI the app does not have is shown on the page
(AADSTS700016, AADSTS50011), never redirected to; other errors go back to the redirect URI as ``error`` and
``error_description``. The page posts to the same path (Origin guard as on the device page), asks for the MFA
step when Conditional Access or ``claims`` demands it, and answers with a 302 to the redirect URI with ``code``
(``response_mode=query``) or, with ``response_mode=form_post`` (what MSAL's interactive flow sends: its loopback
listener accepts only POST), a page whose form the browser posts to the redirect URI.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import time
from collections.abc import Callable, Mapping
from html import escape
from urllib.parse import parse_qsl, urlencode, urlsplit

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from mcp_server.localcloud.identity.auth_code import REQUEST_LIFETIME, SignInRequest, redirect_uri_allowed
from mcp_server.localcloud.identity.errors import EntraError
from mcp_server.localcloud.identity.grants import TokenService
from mcp_server.localcloud.identity.page_guard import cross_site_refusal, own_origins
from mcp_server.localcloud.identity.pages import error_page, login_form, mfa_step
from mcp_server.localcloud.identity.policies import check_blocked, needs_mfa, parse_claims
from mcp_server.localcloud.identity.scopes import parse_scope
from mcp_server.localcloud.tenant import AppRegistration, Tenant

CHALLENGE = re.compile(r"[A-Za-z0-9_-]{43}")  # base64url SHA-256, no padding
OWN_HOST_NAMES = ("127.0.0.1", "localhost")
RESPONSE_MODES = ("query", "form_post")
# The form_post page's only script: the CSP allows exactly this one by its hash (no 'unsafe-inline').
SUBMIT_SCRIPT = "document.forms[0].submit();"
SUBMIT_SCRIPT_HASH = base64.b64encode(hashlib.sha256(SUBMIT_SCRIPT.encode()).digest()).decode()


async def read_form(request: Request) -> dict[str, str]:
    body = (await request.body()).decode("utf-8", errors="replace")
    return dict(parse_qsl(body, keep_blank_values=True))


def _headers(redirect_uri: str = "") -> dict[str, str]:
    # form-action also governs the redirect after the POST, so the app's loopback origin must be allowed.
    parts = urlsplit(redirect_uri)
    target = f" {parts.scheme}://{parts.netloc}" if parts.scheme == "http" and parts.netloc else ""
    return {
        "Cache-Control": "no-store",
        "X-Frame-Options": "DENY",
        # same-origin: with no-referrer a browser's form POST carries `Origin: null` (refused as cross-site).
        "Referrer-Policy": "same-origin",
        "Content-Security-Policy": f"default-src 'none'; style-src 'unsafe-inline'; form-action 'self'{target}; "
        "frame-ancestors 'none'",
    }


class AuthorizeEndpoint:
    def __init__(self, tenant: Tenant, tokens: TokenService, base_url: Callable[[], str]) -> None:
        self.tenant = tenant
        self.tokens = tokens
        self.base_url = base_url

    async def __call__(self, request: Request, path: str) -> Response:
        if request.method == "GET":
            return self.start(request.query_params, path)
        refusal = cross_site_refusal(
            request.headers.get("origin"),
            request.headers.get("sec-fetch-site"),
            own_origins(self.base_url(), OWN_HOST_NAMES),
        )
        if refusal is not None:
            return self.page_error("Sign-in refused", refusal, 403)
        return self.complete(await read_form(request), path)

    # -- GET: validate, then show the login page ----------------------------------------------------------
    def start(self, params: Mapping[str, str], path: str) -> Response:
        client_id = params.get("client_id", "")
        if not client_id:
            return self.page_error(
                "Sign-in failed",
                "AADSTS900144: The request body must contain the following parameter: 'client_id'.",
            )
        client = self.tenant.app_by_client_id(client_id)
        if client is None:
            return self.page_error(
                "Sign-in failed",
                f"AADSTS700016: Application with identifier '{client_id[:80]}' "
                f"was not found in the directory '{self.tenant.tenant_id}'.",
            )
        redirect_uri = params.get("redirect_uri", "")
        if not redirect_uri_allowed(redirect_uri, client):
            return self.page_error(
                "Sign-in failed",
                f"AADSTS50011: The redirect URI '{redirect_uri[:200]}' "
                "specified in the request does not match the redirect URIs configured for the "
                f"application '{client.client_id}'. Make sure the redirect URI sent in the "
                "request matches one added to your application in the Azure portal.",
            )
        state = params.get("state", "")
        try:
            sign_in = self.validated(params, client, redirect_uri, state)
        except EntraError as exc:
            return self.redirect(
                redirect_uri,
                {"error": exc.error, "error_description": f"AADSTS{exc.code}: {exc.message}", "state": state},
                params.get("response_mode", "query"),
            )
        request_id = self.tokens.auth_codes.add_request(sign_in)
        html = login_form(
            self.tenant, path, request_id=request_id, app_name=client.name, login=params.get("login_hint", "")
        )
        return HTMLResponse(html, headers=_headers(redirect_uri))

    def validated(
        self, params: Mapping[str, str], client: AppRegistration, redirect_uri: str, state: str
    ) -> SignInRequest:
        response_type = params.get("response_type", "")
        if response_type != "code":
            raise EntraError(
                "unsupported_response_type",
                700054,
                f"response_type '{response_type[:40]}' is not enabled for the application. This "
                "platform supports response_type=code (with PKCE).",
            )
        response_mode = params.get("response_mode", "query")
        if response_mode not in RESPONSE_MODES:
            raise EntraError(
                "invalid_request",
                900144,
                "The local identity platform answers with response_mode=query or form_post only.",
            )
        challenge, method = params.get("code_challenge", ""), params.get("code_challenge_method", "")
        if not challenge or method != "S256":
            raise EntraError(
                "invalid_request",
                9002325,
                "Proof Key for Code Exchange is required: send "
                "code_challenge with code_challenge_method=S256 (plain is not accepted).",
            )
        if not CHALLENGE.fullmatch(challenge):
            raise EntraError("invalid_request", 501491, "Invalid size of Code_Challenge parameter.")
        scope = parse_scope(self.tenant, params.get("scope", "") or "openid")
        return SignInRequest(
            client,
            redirect_uri,
            scope,
            state,
            challenge,
            params.get("nonce", "")[:256],
            parse_claims(params.get("claims")),
            time.time() + REQUEST_LIFETIME,
            response_mode,
        )

    # -- POST: the person's answer ------------------------------------------------------------------------
    def complete(self, form: Mapping[str, str], path: str) -> Response:
        request_id = form.get("request", "")
        pending = self.tokens.auth_codes.request(request_id)
        if pending is None:
            return self.page_error(
                "Sign-in expired",
                "This sign-in has expired or was already completed. Start the sign-in again in the app.",
            )
        headers = _headers(pending.redirect_uri)
        if form.get("action", "approve") == "decline":
            self.tokens.auth_codes.drop(request_id)
            return self.redirect(
                pending.redirect_uri,
                {
                    "error": "access_denied",
                    "error_description": "AADSTS65004: User declined to consent to access the app.",
                    "state": pending.state,
                },
                pending.response_mode,
            )
        login = form.get("login", "")
        user = self.tenant.user_by_login(login)
        if user is None:
            known = ", ".join(u.login for u in self.tenant.users)
            html = login_form(
                self.tenant,
                path,
                request_id=request_id,
                app_name=pending.client.name,
                login=login,
                error=f"There is no demo user '{login[:80]}'. Use one of: {known}.",
            )
            return HTMLResponse(html, status_code=400, headers=headers)
        mfa_done = form.get("mfa") == "approve"
        if not mfa_done and needs_mfa(self.tenant, user, pending.scope.target.identifier_uri, pending.claims):
            html = mfa_step(
                self.tenant,
                path,
                hidden={"request": request_id, "login": login, "action": "approve"},
                user_name=user.name,
                number=secrets.randbelow(90) + 10,
                reason=f"Your organization requires multi-factor authentication to sign in to "
                f"{pending.client.name}.",
            )
            return HTMLResponse(html, headers=headers)
        try:
            check_blocked(self.tenant, user, pending.scope.target.identifier_uri, None)
        except EntraError as exc:
            return self.page_error(
                "You cannot access this right now", f"AADSTS{exc.code}: {exc.message}", 403
            )
        amr = ("pwd", "mfa") if mfa_done else ("pwd",)
        code = self.tokens.auth_codes.issue(request_id, user, amr, pending.claims.acrs if mfa_done else ())
        if code is None:
            return self.page_error(
                "Sign-in expired",
                "This sign-in has expired or was already completed. Start the sign-in again in the app.",
            )
        return self.redirect(
            pending.redirect_uri,
            {"code": code, "state": pending.state, "session_state": secrets.token_hex(16)},
            pending.response_mode,
        )

    # -- answers ------------------------------------------------------------------------------------------
    @staticmethod
    def redirect(redirect_uri: str, params: dict[str, str], response_mode: str = "query") -> Response:
        if response_mode == "form_post":
            return form_post(redirect_uri, params)
        query = urlencode({k: v for k, v in params.items() if v})
        return RedirectResponse(
            f"{redirect_uri}{'&' if '?' in redirect_uri else '?'}{query}",
            status_code=302,
            headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"},
        )

    @staticmethod
    def page_error(title: str, message: str, status: int = 400) -> HTMLResponse:
        return HTMLResponse(error_page(title, message), status_code=status, headers=_headers())


def form_post(redirect_uri: str, params: dict[str, str]) -> HTMLResponse:
    """The answer as a form the browser posts to the redirect URI at once (a button if scripts are off)."""
    fields = "".join(
        f"<input type=hidden name='{escape(k)}' value='{escape(v)}'>" for k, v in params.items() if v
    )
    html = (
        "<!doctype html><html lang=en><head><meta charset=utf-8><title>Working...</title></head><body>"
        f"<form method=post action='{escape(redirect_uri)}'>{fields}"
        "<noscript><p>Script is disabled. Click Submit to continue.</p><button>Submit</button></noscript></form>"
        f"<script>{SUBMIT_SCRIPT}</script></body></html>"
    )
    headers = _headers(redirect_uri)
    headers["Content-Security-Policy"] += f"; script-src 'sha256-{SUBMIT_SCRIPT_HASH}'"
    headers["Referrer-Policy"] = "no-referrer"  # the app's listener has no use for the sign-in page's address
    return HTMLResponse(html, headers=headers)
