"""The token endpoint's grants (device code, refresh token, OBO jwt-bearer, client credentials) and the
device-authorization endpoint, answering each failure as Entra does (docs/identity.md, Errors)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

import jwt

import mcp_server.localcloud.identity.errors as errors
from mcp_server.localcloud.identity.auth_code import AuthCodeStore
from mcp_server.localcloud.identity.device_codes import DeviceCodeStore
from mcp_server.localcloud.identity.errors import EntraError
from mcp_server.localcloud.identity.policies import (
    DEVICE_CODE_FLOW,
    ClaimsRequest,
    check_blocked,
    check_mfa,
    parse_claims,
)
from mcp_server.localcloud.identity.scopes import ScopeRequest, Target, parse_scope
from mcp_server.localcloud.identity.tokens import TokenMinter, v1_issuer
from mcp_server.localcloud.tenant import AppRegistration, Tenant, User

DEVICE_CODE = "urn:ietf:params:oauth:grant-type:device_code"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
REFRESH_TOKEN_LIFETIME = 90 * 24 * 3600
MAX_REFRESH_TOKENS = 100_000

Form = dict[str, str]


class ConsentBook:
    """Who has consented to what. Starts from the tenant file; tests can revoke and grant at run time."""

    def __init__(self, tenant: Tenant) -> None:
        self._tenant = tenant
        self._lock = threading.Lock()
        self._overrides: dict[tuple[str, str, str], bool] = {}

    def consented(self, client: AppRegistration, resource_uri: str, oid: str) -> bool:
        with self._lock:
            override = self._overrides.get((client.client_id, resource_uri, oid))
        if override is not None:
            return override
        access = client.access_to(resource_uri)
        return access is not None and access.consented(oid)

    def set(self, client_id: str, resource_uri: str, oid: str, consented: bool | None) -> None:
        with self._lock:
            if consented is None:
                self._overrides.pop((client_id, resource_uri, oid), None)
            else:
                self._overrides[(client_id, resource_uri, oid)] = consented


@dataclass(frozen=True)
class RefreshGrant:
    client_id: str
    oid: str
    scope: str
    expires_at: float
    amr: tuple[str, ...] = ("pwd",)  # how the session's sign-in was done: refreshed tokens keep it
    acrs: tuple[str, ...] = ()


class RefreshTokenStore:
    """Opaque refresh tokens, kept server-side by their SHA-256 (the tokens themselves are never stored)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._grants: OrderedDict[str, RefreshGrant] = OrderedDict()

    @staticmethod
    def _key(token: str) -> str:
        return hashlib.sha256(token.encode()).hexdigest()

    def issue(
        self,
        client_id: str,
        oid: str,
        scope: str,
        amr: tuple[str, ...] = ("pwd",),
        acrs: tuple[str, ...] = (),
    ) -> str:
        token = "1.AQ" + secrets.token_urlsafe(96)
        with self._lock:
            self._grants[self._key(token)] = RefreshGrant(
                client_id, oid, scope, time.time() + REFRESH_TOKEN_LIFETIME, amr, acrs
            )
            while len(self._grants) > MAX_REFRESH_TOKENS:
                self._grants.popitem(last=False)
        return token

    def get(self, token: str) -> RefreshGrant | None:
        with self._lock:
            return self._grants.get(self._key(token))


class TokenService:
    def __init__(
        self,
        tenant: Tenant,
        minter: TokenMinter,
        devices: DeviceCodeStore,
        consent: ConsentBook,
        verification_uri: Any,
    ) -> None:
        self.tenant = tenant
        self.minter = minter
        self.devices = devices
        self.consent = consent
        self.refresh_tokens = RefreshTokenStore()
        self.auth_codes = AuthCodeStore()
        self._verification_uri = verification_uri

    # -- /devicecode -------------------------------------------------------------------------------------
    def device_authorization(self, form: Form) -> dict[str, Any]:
        if "resource" in form:
            raise errors.resource_parameter()
        client_id = _required(form, "client_id")
        client = self._client(client_id)
        scope = parse_scope(self.tenant, _required(form, "scope"))
        if not client.public_client or not client.allow_device_code_flow:
            raise EntraError(
                "invalid_client",
                7000218,
                "The request body must contain the following parameter: 'client_assertion' or "
                "'client_secret'. (Public client flows are not allowed for this application.)",
                status=401,
            )
        auth = self.devices.create(client.client_id, scope, parse_claims(form.get("claims")))
        uri = self._verification_uri()
        return {
            "user_code": auth.user_code,
            "device_code": auth.device_code,
            "verification_uri": uri,
            "expires_in": self.devices.lifetime,
            "interval": auth.interval,
            "message": f"To sign in, use a web browser to open the page {uri} and enter the code "
            f"{auth.user_code} to authenticate.",
        }

    # -- /token ------------------------------------------------------------------------------------------
    def token(self, form: Form, authorization: str | None) -> dict[str, Any]:
        if "resource" in form:
            raise errors.resource_parameter()
        grant_type = _required(form, "grant_type")
        if grant_type == DEVICE_CODE:
            return self._device_code(form, authorization)
        if grant_type == "refresh_token":
            return self._refresh(form, authorization)
        if grant_type == "authorization_code":
            return self._authorization_code(form, authorization)
        if grant_type == JWT_BEARER:
            return self._on_behalf_of(form, authorization)
        if grant_type == "client_credentials":
            return self._client_credentials(form, authorization)
        raise errors.unsupported_grant(grant_type)

    def _device_code(self, form: Form, authorization: str | None) -> dict[str, Any]:
        client, authenticated = self._authenticate(form, authorization)
        device_code = form.get("device_code") or form.get("code")  # MSAL sends both; Entra once wanted `code`
        if not device_code:
            raise errors.missing_parameter("device_code")
        auth = self.devices.poll(device_code, client.client_id)
        assert auth.user is not None
        check_blocked(self.tenant, auth.user, auth.scope.target.identifier_uri, DEVICE_CODE_FLOW)
        return self._user_tokens(
            auth.user, auth.scope, client, authenticated, form, amr=auth.amr, acrs=auth.acrs
        )

    def _authorization_code(self, form: Form, authorization: str | None) -> dict[str, Any]:
        client, authenticated = self._authenticate(form, authorization)
        code = _required(form, "code")
        redirect_uri = _required(form, "redirect_uri")
        verifier = _required(form, "code_verifier")  # every code here has an S256 challenge
        grant = self.auth_codes.redeem(code, client.client_id, redirect_uri, verifier)
        return self._user_tokens(
            grant.user,
            grant.scope,
            client,
            authenticated,
            form,
            amr=grant.amr,
            acrs=grant.acrs,
            nonce=grant.nonce,
        )

    def _refresh(self, form: Form, authorization: str | None) -> dict[str, Any]:
        client, authenticated = self._authenticate(form, authorization)
        grant = self.refresh_tokens.get(_required(form, "refresh_token"))
        if grant is None:
            raise EntraError("invalid_grant", 9002313, "Invalid request. Request is malformed or invalid.")
        if grant.expires_at < time.time():
            raise EntraError(
                "invalid_grant", 700082, "The refresh token has expired due to inactivity. Sign in again."
            )
        if grant.client_id != client.client_id:
            raise EntraError(
                "invalid_grant",
                70000,
                "Provided grant is invalid or malformed. The refresh token was issued to another client.",
            )
        user = self.tenant.user_by_oid(grant.oid)
        if user is None:
            raise _no_such_user(grant.oid, self.tenant.tenant_id)
        scope = parse_scope(self.tenant, form.get("scope") or grant.scope)
        return self._user_tokens(user, scope, client, authenticated, form, amr=grant.amr, acrs=grant.acrs)

    def _on_behalf_of(self, form: Form, authorization: str | None) -> dict[str, Any]:
        client, _ = self._authenticate(form, authorization, require_secret=True)
        assertion = _required(form, "assertion")
        scope_raw = _required(form, "scope")
        use = _required(form, "requested_token_use")
        if use != "on_behalf_of":
            raise errors.invalid_parameter("requested_token_use", "Expected 'on_behalf_of'.")
        user, claims = self._validate_assertion(assertion, client)
        scope = parse_scope(self.tenant, scope_raw)
        # The session's authentication travels with the assertion: OBO cannot add a factor (nobody to ask).
        amr = tuple(str(m) for m in claims.get("amr", ()) if isinstance(m, str)) or ("pwd",)
        acrs = tuple(str(a) for a in claims.get("acrs", ()) if isinstance(a, str))
        return self._user_tokens(user, scope, client, True, form, amr=amr, acrs=acrs)

    def _client_credentials(self, form: Form, authorization: str | None) -> dict[str, Any]:
        client, _ = self._authenticate(form, authorization, require_secret=True)
        scope_raw = _required(form, "scope")
        scope = parse_scope(self.tenant, scope_raw)
        if scope.values != (".default",):
            raise EntraError(
                "invalid_scope",
                1002012,
                f"The provided value for scope {scope_raw} is not valid. Client credential flows must have a scope "
                "value with /.default suffixed to the resource identifier (application ID URI).",
            )
        own_api = scope.target.app is not None and scope.target.app.client_id == client.client_id
        roles = client.granted_app_roles if own_api else ()
        minted = self.minter.app_access_token(client, scope.target, roles)
        return {
            "token_type": "Bearer",
            "expires_in": minted.expires_in,
            "ext_expires_in": minted.expires_in,
            "access_token": minted.token,
            "scope": f"{scope.prefix}/.default",
        }

    # -- shared steps ------------------------------------------------------------------------------------
    def _client(self, client_id: str) -> AppRegistration:
        client = self.tenant.app_by_client_id(client_id)
        if client is None:
            raise errors.unknown_client(client_id, self.tenant.tenant_id)
        return client

    def _authenticate(
        self, form: Form, authorization: str | None, *, require_secret: bool = False
    ) -> tuple[AppRegistration, bool]:
        """The calling app, and whether it proved itself with its secret (RFC 6749 §2.3: body or Basic)."""
        basic_id, basic_secret = _basic_credentials(authorization)
        client = self._client(form.get("client_id") or basic_id or _required(form, "client_id"))
        secret = form.get("client_secret") or basic_secret
        if form.get("client_assertion"):
            raise EntraError(
                "invalid_client",
                700027,
                "Client assertion failed signature validation. No certificate is registered for "
                "this application in the local identity platform: use its client secret.",
                status=401,
            )
        if client.public_client:
            if secret:
                raise EntraError(
                    "invalid_client",
                    700025,
                    "Client is public so neither 'client_assertion' nor 'client_secret' should be presented.",
                    status=401,
                )
            if require_secret:
                raise errors.missing_client_secret()
            return client, False
        if not secret:
            raise errors.missing_client_secret()
        expected = client.client_secret.get_secret_value() if client.client_secret else ""
        if not expected or not hmac.compare_digest(secret.encode(), expected.encode()):
            raise errors.bad_client_secret(client.client_id)
        if client.secret_expired:  # the right secret, past its end date: Entra says so only once it matched
            raise errors.expired_client_secret(client.client_id)
        return client, True

    def _allowed_scopes(self, client: AppRegistration, target: Target, user: User) -> tuple[str, ...] | None:
        """Delegated scopes ``client`` may get on ``target`` for ``user``: pre-authorized or consented."""
        if target.app is not None and client.client_id in target.app.authorized_client_ids:
            return target.exposed_scopes
        access = client.access_to(target.identifier_uri)
        if access is None or not self.consent.consented(client, target.identifier_uri, user.oid):
            return None
        return tuple(s for s in access.delegated_scopes if s in target.exposed_scopes)

    def _user_tokens(
        self,
        user: User,
        scope: ScopeRequest,
        client: AppRegistration,
        authenticated: bool,
        form: Form,
        *,
        amr: tuple[str, ...] = ("pwd",),
        acrs: tuple[str, ...] = (),
        nonce: str | None = None,
    ) -> dict[str, Any]:
        allowed = self._allowed_scopes(client, scope.target, user)
        granted = scope.granted(allowed or ())
        if allowed is None or not granted or (not scope.is_default and len(granted) < len(scope.values)):
            raise errors.consent_required(client.client_id, client.name)
        claims = parse_claims(form.get("claims"))
        check_mfa(self.tenant, user, scope.target.identifier_uri, scope.target.app_id, amr, claims)
        acrs = _with_requested_contexts(acrs, claims, amr)
        minted = self.minter.user_access_token(
            user, scope.target, granted, client, client_authenticated=authenticated, amr=amr, acrs=acrs
        )
        response: dict[str, Any] = {
            "token_type": "Bearer",
            "scope": scope.echo(granted),
            "expires_in": minted.expires_in,
            "ext_expires_in": minted.expires_in,
            "access_token": minted.token,
        }
        if "offline_access" in scope.oidc:
            response["refresh_token"] = self.refresh_tokens.issue(
                client.client_id, user.oid, scope.raw, amr, acrs
            )
        if "openid" in scope.oidc:
            response["id_token"] = self.minter.id_token(user, client, nonce=nonce).token
        if form.get("client_info") == "1":
            response["client_info"] = self.minter.client_info(user)
        return response

    def _validate_assertion(self, assertion: str, client: AppRegistration) -> tuple[User, dict[str, Any]]:
        """The user behind an OBO assertion, checked as Entra does (50027, 50013, 240002, 500133, 500131)."""
        try:
            header = jwt.get_unverified_header(assertion)
            jwt.decode(assertion, options={"verify_signature": False})  # a JSON payload, or malformed
        except jwt.PyJWTError as exc:
            raise EntraError("invalid_request", 50027, "JWT token is invalid or malformed.") from exc
        kid = header.get("kid") or header.get("x5t") or ""
        key = self.minter.keys.find(kid) if header.get("alg") == "RS256" else None
        if key is None:
            raise EntraError(
                "invalid_grant",
                50013,
                "Assertion failed signature validation. [Reason - The key was not found., "
                f"Thumbprint of key used by client: '{kid}']",
            )
        try:
            claims = jwt.decode(
                assertion,
                key.private_key.public_key(),
                algorithms=["RS256"],
                options={
                    "verify_aud": False,
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                    "verify_iss": False,
                },
            )
        except jwt.InvalidSignatureError as exc:
            raise EntraError(
                "invalid_grant",
                50013,
                "Assertion failed signature validation. [Reason - The provided signature value did "
                f"not match the expected signature value., Thumbprint of key used by client: '{kid}']",
            ) from exc
        except jwt.PyJWTError as exc:
            raise EntraError("invalid_request", 50027, "JWT token is invalid or malformed.") from exc
        tid = self.tenant.tenant_id
        if claims.get("tid") != tid or claims.get("iss") not in (self.minter.issuer(tid), v1_issuer(tid)):
            raise EntraError(
                "invalid_grant",
                50013,
                f"Assertion failed validation. [Reason - The issuer '{claims.get('iss')}' of the "
                f"assertion is not the issuer of tenant '{tid}'.]",
            )
        if "scp" not in claims and "roles" not in claims:
            raise EntraError(
                "invalid_grant",
                240002,
                "Input id_token cannot be used as 'urn:ietf:params:oauth:grant-type:jwt-bearer' grant.",
            )
        if "scp" not in claims:
            raise EntraError(
                "invalid_grant",
                50013,
                "Assertion failed validation. [Reason - An application token cannot be used as a user "
                "assertion: the on-behalf-of flow needs a delegated (user) token.]",
            )
        now = time.time()
        exp, nbf = claims.get("exp"), claims.get("nbf", 0)
        if (
            not isinstance(exp, int | float)
            or exp <= now
            or (isinstance(nbf, int | float) and nbf > now + 300)
        ):
            raise EntraError(
                "invalid_grant",
                500133,
                "Assertion is not within its valid time range. Ensure that the access token is not expired before "
                "using it for user assertion, or request a new token. "
                f"Current time: {_iso(now)}, expiry time of assertion {_iso(exp if isinstance(exp, int | float) else 0)}.",
            )
        expected = {client.client_id.lower(), *(u.lower() for u in client.identifier_uris)}
        audience = claims.get("aud")
        if not isinstance(audience, str) or audience.lower() not in expected:
            raise EntraError(
                "invalid_grant",
                500131,
                f"Assertion audience does not match the Client app presenting the assertion. The audience in the "
                f"assertion was '{audience}' and the expected audience is '{client.client_id}' or one of the "
                f"Application Uris of this application with App ID '{client.client_id}'({client.name}). The "
                "downstream client must request a token for the expected audience (the application that made the "
                "OBO request) and this application should use that token as the assertion.",
            )
        user = self.tenant.user_by_oid(str(claims.get("oid", "")))
        if user is None:
            raise _no_such_user(str(claims.get("oid")), tid)
        return user, claims


def _with_requested_contexts(
    acrs: tuple[str, ...], claims: ClaimsRequest, amr: tuple[str, ...]
) -> tuple[str, ...]:
    """Authentication contexts the token carries: those of the sign-in, plus any the client asks for now when
    the session has done MFA (the only step-up the local platform knows)."""
    if "mfa" not in amr:
        return acrs
    return tuple(dict.fromkeys(acrs + claims.acrs))


def _required(form: Form, name: str) -> str:
    value = form.get(name)
    if not value:
        raise errors.missing_parameter(name)
    return value


def _basic_credentials(authorization: str | None) -> tuple[str | None, str | None]:
    if not authorization or not authorization.lower().startswith("basic "):
        return None, None
    try:
        decoded = base64.b64decode(authorization[6:].strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None, None
    client_id, _, secret = decoded.partition(":")
    return unquote(client_id) or None, unquote(secret) or None


def _no_such_user(oid: str, tenant_id: str) -> EntraError:
    return EntraError(
        "invalid_grant",
        50034,
        f"The user account {oid} does not exist in the {tenant_id} directory. To sign into this "
        "application, the account must be added to the directory.",
    )


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int((ts % 1) * 1e7):07d}Z"
