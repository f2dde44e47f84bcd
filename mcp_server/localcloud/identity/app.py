"""The identity platform's HTTP surface, on Entra ID v2 paths (the table at the top of docs/identity.md)."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import jwt
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from mcp_server.localcloud.identity.authorize import AuthorizeEndpoint, read_form
from mcp_server.localcloud.identity.device_codes import PageError, UnknownUserCode
from mcp_server.localcloud.identity.errors import NO_STORE, EntraError, unknown_tenant
from mcp_server.localcloud.identity.grants import TokenService
from mcp_server.localcloud.identity.page_guard import WrongCodeThrottle, cross_site_refusal, own_origins
from mcp_server.localcloud.identity.pages import approved, declined, mfa_step, sign_in_form
from mcp_server.localcloud.identity.policies import needs_mfa
from mcp_server.localcloud.identity.tokens import TokenMinter, v1_issuer
from mcp_server.localcloud.signing_keys import SigningKeyStore
from mcp_server.localcloud.tenant import Tenant

TENANT_INDEPENDENT = ("common", "organizations")
DEVICE_LOGIN_PATH = "/devicelogin"  # the sign-in form posts back to itself
# The platform listens on loopback; its page may be opened as either name.
OWN_HOST_NAMES = ("127.0.0.1", "localhost")
DISCOVERY_HEADERS = {"Cache-Control": "max-age=86400, private", "Access-Control-Allow-Origin": "*"}
# The sign-in page may not be framed (clickjacking an Approve button), cached, or post anywhere but here.
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    # same-origin, not no-referrer: with no-referrer a browser posts the form with `Origin: null`, which the
    # cross-site guard must refuse; same-origin still sends nothing to other sites.
    "Referrer-Policy": "same-origin",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
    "frame-ancestors 'none'",
}


@dataclass
class Context:
    tenant: Tenant
    keys: SigningKeyStore
    minter: TokenMinter
    tokens: TokenService
    base_url: Callable[[], str]
    wrong_codes: WrongCodeThrottle = field(default_factory=WrongCodeThrottle)


@dataclass(frozen=True)
class SignInAttempt:
    """A submitted device-login form, with the address it came from (the wrong-code throttle's key)."""

    user_code: str
    login: str
    action: str
    address: str
    mfa: str = ""  # "approve": the person did the second step (number matching)


class IdentityApp:
    """The platform's HTTP handlers over one ``Context``; ``build()`` gives the Starlette app that routes to them."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def build(self, extra_routes: list[Route] | None = None) -> Starlette:
        """``extra_routes`` (the Microsoft Graph subset) come first: their paths are not tenant paths."""
        # Any handler may raise EntraError (unknown tenant, refused grant): it is answered with Entra's envelope.
        routes = [*(extra_routes or []), *self.routes()]
        return Starlette(routes=routes, exception_handlers={EntraError: self.entra_error})

    def routes(self) -> list[Route]:
        return [
            Route("/{tenant}/v2.0/.well-known/openid-configuration", self.openid_configuration),
            Route("/{tenant}/.well-known/openid-configuration", self.openid_configuration_v1),
            Route("/{tenant}/discovery/v2.0/keys", self.keys),
            Route("/{tenant}/discovery/keys", self.keys_v1),
            Route("/{tenant}/oauth2/v2.0/devicecode", self.devicecode, methods=["POST"]),
            Route("/{tenant}/oauth2/v2.0/token", self.token, methods=["POST"]),
            Route("/{tenant}/oauth2/v2.0/authorize", self.authorize, methods=["GET", "POST"]),
            Route("/{tenant}/oauth2/v2.0/logout", self.logout),
            Route("/common/discovery/instance", self.instance_discovery),
            Route(DEVICE_LOGIN_PATH, self.devicelogin, methods=["GET", "POST"]),
            Route("/oidc/userinfo", self.userinfo, methods=["GET", "POST"]),
            Route("/error", self.error_page),
            Route("/healthz", self.healthz),
        ]

    # -- shared ------------------------------------------------------------------------------------------

    def resolve_tenant(self, request: Request, *, allow_common: bool = True) -> str:
        """The path's tenant as our tenant id ('common'/'organizations' kept); EntraError 90002 otherwise."""
        name = request.path_params["tenant"]
        if allow_common and name.lower() in TENANT_INDEPENDENT:
            return name.lower()
        if name.lower() in (self.ctx.tenant.tenant_id.lower(), self.ctx.tenant.domain.lower()):
            return self.ctx.tenant.tenant_id
        raise unknown_tenant(name)

    async def entra_error(self, request: Request, exc: Exception) -> Response:
        if not isinstance(exc, EntraError):  # registered for EntraError only
            raise exc
        return exc.response(
            correlation_id=request.headers.get("client-request-id"), error_uri_base=self.ctx.base_url()
        )

    # -- discovery -----------------------------------------------------------------------------------------

    async def openid_configuration(self, request: Request) -> Response:
        tenant = self.resolve_tenant(request)
        base = self.ctx.base_url()
        issuer_tid = "{tenantid}" if tenant in TENANT_INDEPENDENT else tenant
        doc = {
            "token_endpoint": f"{base}/{tenant}/oauth2/v2.0/token",
            "token_endpoint_auth_methods_supported": [
                "client_secret_post",
                "private_key_jwt",
                "client_secret_basic",
            ],
            "jwks_uri": f"{base}/{tenant}/discovery/v2.0/keys",
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "issuer": f"{base}/{issuer_tid}/v2.0",
            "request_uri_parameter_supported": False,
            "userinfo_endpoint": f"{base}/oidc/userinfo",
            "authorization_endpoint": f"{base}/{tenant}/oauth2/v2.0/authorize",
            "device_authorization_endpoint": f"{base}/{tenant}/oauth2/v2.0/devicecode",
            "http_logout_supported": True,
            "frontchannel_logout_supported": True,
            "end_session_endpoint": f"{base}/{tenant}/oauth2/v2.0/logout",
            "claims_supported": [
                "sub",
                "iss",
                "cloud_instance_name",
                "cloud_instance_host_name",
                "cloud_graph_host_name",
                "msgraph_host",
                "aud",
                "exp",
                "iat",
                "auth_time",
                "acr",
                "nonce",
                "preferred_username",
                "name",
                "tid",
                "ver",
                "at_hash",
                "c_hash",
                "email",
            ],
            "kerberos_endpoint": f"{base}/{tenant}/kerberos",
            "tenant_region_scope": "WW",
            "cloud_instance_name": "microsoftonline.com",
            "cloud_graph_host_name": "graph.windows.net",
            "msgraph_host": "graph.microsoft.com",
            "rbac_url": "https://pas.windows.net",
        }
        return JSONResponse(doc, headers=DISCOVERY_HEADERS)

    async def openid_configuration_v1(self, request: Request) -> Response:
        # The v1 document: tells validators of v1 tokens (the search token) their issuer and keys.
        tenant = self.resolve_tenant(request, allow_common=False)
        base = self.ctx.base_url()
        doc = {
            "token_endpoint": f"{base}/{tenant}/oauth2/token",
            "jwks_uri": f"{base}/{tenant}/discovery/keys",
            "issuer": v1_issuer(tenant),
            "authorization_endpoint": f"{base}/{tenant}/oauth2/authorize",
            "id_token_signing_alg_values_supported": ["RS256"],
            "subject_types_supported": ["pairwise"],
            "response_types_supported": ["code", "id_token", "code id_token", "token id_token", "token"],
            "tenant_region_scope": "WW",
            "cloud_instance_name": "microsoftonline.com",
        }
        return JSONResponse(doc, headers=DISCOVERY_HEADERS)

    async def keys(self, request: Request) -> Response:
        tenant = self.resolve_tenant(request)
        issuer_tid = "{tenantid}" if tenant in TENANT_INDEPENDENT else tenant
        jwks = self.ctx.keys.jwks(f"{self.ctx.base_url()}/{issuer_tid}/v2.0")
        return JSONResponse(jwks, headers=DISCOVERY_HEADERS)

    async def keys_v1(self, request: Request) -> Response:
        self.resolve_tenant(request)
        return JSONResponse(self.ctx.keys.jwks(), headers=DISCOVERY_HEADERS)

    async def instance_discovery(self, request: Request) -> Response:
        endpoint = request.query_params.get("authorization_endpoint", "")
        parts = urlsplit(endpoint)
        segments = [s for s in parts.path.split("/") if s]
        tenant = segments[0] if segments else "common"
        host = parts.netloc or urlsplit(self.ctx.base_url()).netloc
        return JSONResponse(
            {
                "tenant_discovery_endpoint": f"https://{host}/{tenant}/v2.0/.well-known/openid-configuration",
                "api-version": "1.1",
                "metadata": [{"preferred_network": host, "preferred_cache": host, "aliases": [host]}],
            },
            headers=DISCOVERY_HEADERS,
        )

    # -- grants --------------------------------------------------------------------------------------------

    async def devicecode(self, request: Request) -> Response:
        self.resolve_tenant(request)
        body = self.ctx.tokens.device_authorization(await read_form(request))
        return JSONResponse(body, headers=NO_STORE)

    async def token(self, request: Request) -> Response:
        self.resolve_tenant(request)
        body = self.ctx.tokens.token(await read_form(request), request.headers.get("authorization"))
        headers = dict(NO_STORE)
        if cid := request.headers.get("client-request-id"):
            headers["client-request-id"] = cid
        return JSONResponse(body, headers=headers)

    async def userinfo(self, request: Request) -> Response:
        claims = _verify_bearer(self.ctx, request.headers.get("authorization", ""))
        if claims is None:
            return JSONResponse(
                {
                    "error": {
                        "code": "InvalidAuthenticationToken",
                        "message": "Access token is missing or invalid.",
                    }
                },
                status_code=401,
                headers={"WWW-Authenticate": 'Bearer realm=""'},
            )
        user = self.ctx.tenant.user_by_oid(str(claims.get("oid", "")))
        if user is None:
            return JSONResponse(
                {"error": {"code": "InvalidAuthenticationToken", "message": "Unknown user."}}, status_code=401
            )
        given, _, family = user.name.partition(" ")
        return JSONResponse(
            {
                "sub": claims.get("sub"),
                "name": user.name,
                "family_name": family,
                "given_name": given,
                "email": user.upn,
            }
        )

    # -- the device-login page -----------------------------------------------------------------------------

    async def devicelogin(self, request: Request) -> Response:
        if request.method == "GET":
            page = sign_in_form(
                self.ctx.tenant, DEVICE_LOGIN_PATH, user_code=request.query_params.get("code", "")
            )
            return HTMLResponse(page, headers=PAGE_HEADERS)
        # Refused before the form is even read: nothing from another site, nothing from a throttled address.
        address = request.client.host if request.client else "unknown"
        refusal = self.refusal_before_form(request, address)
        if refusal is not None:
            return refusal
        form = await read_form(request)
        attempt = SignInAttempt(
            form.get("user_code", ""),
            form.get("login", ""),
            form.get("action", "approve"),
            address,
            form.get("mfa", ""),
        )
        return self.sign_in(attempt)

    def refusal_before_form(self, request: Request, address: str) -> Response | None:
        """403 for a post from another site, 429 for an address that entered too many unknown codes."""
        refusal = cross_site_refusal(
            request.headers.get("origin"),
            request.headers.get("sec-fetch-site"),
            own_origins(self.ctx.base_url(), OWN_HOST_NAMES),
        )
        if refusal is not None:
            return HTMLResponse(
                sign_in_form(self.ctx.tenant, DEVICE_LOGIN_PATH, error=refusal),
                status_code=403,
                headers=PAGE_HEADERS,
            )
        if (wait := self.ctx.wrong_codes.retry_after(address)) is not None:
            message = (
                f"Too many unknown codes were entered from your address. Wait {wait} seconds, then enter "
                "the code the app shows again. (HTTP 429)"
            )
            return HTMLResponse(
                sign_in_form(self.ctx.tenant, DEVICE_LOGIN_PATH, error=message),
                status_code=429,
                headers={**PAGE_HEADERS, "Retry-After": str(wait)},
            )
        return None

    def sign_in(self, attempt: SignInAttempt) -> Response:
        """Approve or decline the code for the demo user the form names; the form again, saying why, otherwise."""
        if attempt.action not in ("approve", "decline"):
            return self.form_again(attempt, f"Unknown action '{attempt.action}': use Approve or Decline.")
        if not attempt.user_code.strip():
            return self.form_again(attempt, "Enter the code the app shows (for example ABCDEFGHJ).")
        tenant, devices = self.ctx.tenant, self.ctx.tokens.devices
        try:
            auth = devices.lookup(attempt.user_code)
            app_name = (tenant.app_by_client_id(auth.client_id) or tenant.console_app).name
            if attempt.action == "decline":
                devices.decline(attempt.user_code)
                return HTMLResponse(declined(app_name), headers=PAGE_HEADERS)
            user = tenant.user_by_login(attempt.login)
            if user is None:
                known = ", ".join(u.login for u in tenant.users)
                return self.form_again(
                    attempt,
                    f"There is no demo user '{attempt.login}' in {tenant.display_name}. "
                    f"Use one of: {known} (username or the part before @).",
                )
            mfa_done = attempt.mfa == "approve"
            if not mfa_done and needs_mfa(tenant, user, auth.scope.target.identifier_uri, auth.claims):
                return self.mfa_step(attempt, user.name, app_name)  # the code stays pending
            amr = ("pwd", "mfa") if mfa_done else ("pwd",)
            devices.approve(attempt.user_code, user, amr=amr, acrs=auth.claims.acrs if mfa_done else ())
        except UnknownUserCode as exc:
            self.ctx.wrong_codes.wrong_code(attempt.address)  # a typo or a guess: each address gets a few
            return self.form_again(attempt, f"{exc.message} (AADSTS{exc.code})")
        except PageError as exc:
            return self.form_again(attempt, f"{exc.message} (AADSTS{exc.code})")
        return HTMLResponse(approved(app_name, user.name, user.username), headers=PAGE_HEADERS)

    def mfa_step(self, attempt: SignInAttempt, user_name: str, app_name: str) -> HTMLResponse:
        hidden = {"user_code": attempt.user_code, "login": attempt.login, "action": "approve"}
        html = mfa_step(
            self.ctx.tenant,
            DEVICE_LOGIN_PATH,
            hidden=hidden,
            user_name=user_name,
            number=secrets.randbelow(90) + 10,
            reason=f"Your organization requires multi-factor authentication to sign in to {app_name}.",
        )
        return HTMLResponse(html, headers=PAGE_HEADERS)

    def form_again(self, attempt: SignInAttempt, message: str, status: int = 400) -> HTMLResponse:
        html = sign_in_form(
            self.ctx.tenant,
            DEVICE_LOGIN_PATH,
            user_code=attempt.user_code,
            login=attempt.login,
            error=message,
        )
        return HTMLResponse(html, status_code=status, headers=PAGE_HEADERS)

    # -- static pages ----------------------------------------------------------------------------------------

    async def authorize(self, request: Request) -> Response:
        self.resolve_tenant(request)
        endpoint = AuthorizeEndpoint(self.ctx.tenant, self.ctx.tokens, self.ctx.base_url)
        return await endpoint(request, request.url.path)

    async def logout(self, request: Request) -> Response:
        return HTMLResponse(
            "<!doctype html><title>Signed out</title><p>You have signed out. You can close this window.</p>"
        )

    async def error_page(self, request: Request) -> Response:
        code = "".join(ch for ch in request.query_params.get("code", "") if ch.isdigit())[:12]
        return HTMLResponse(
            f"<!doctype html><title>AADSTS{code}</title><p>Error AADSTS{code} from the local "
            "identity platform: the error_description of the response says what went wrong.</p>"
        )

    async def healthz(self, request: Request) -> Response:
        return JSONResponse({"status": "ok", "tenant_id": self.ctx.tenant.tenant_id})


def _verify_bearer(ctx: Context, authorization: str) -> dict[str, Any] | None:
    """Claims of a bearer token this platform signed for its own tenant, or None."""
    if not authorization.lower().startswith("bearer "):
        return None
    token = authorization[7:].strip()
    try:
        kid = jwt.get_unverified_header(token).get("kid", "")
        key = ctx.keys.find(kid)
        if key is None:
            return None
        claims = jwt.decode(
            token, key.private_key.public_key(), algorithms=["RS256"], options={"verify_aud": False}
        )
    except jwt.PyJWTError:
        return None
    return claims if claims.get("tid") == ctx.tenant.tenant_id else None
