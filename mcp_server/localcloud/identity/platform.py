"""``IdentityPlatform``: the local identity platform's lifecycle, addresses and test helpers."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mcp_server.localcloud.ca import ensure_tls
from mcp_server.localcloud.identity.app import Context, IdentityApp
from mcp_server.localcloud.identity.device_codes import MAX_CODES_PER_CLIENT, DeviceCodeStore
from mcp_server.localcloud.identity.errors import EntraError
from mcp_server.localcloud.identity.grants import ConsentBook, TokenService
from mcp_server.localcloud.identity.graph import GraphApi
from mcp_server.localcloud.identity.page_guard import (
    WRONG_CODE_BURST,
    WRONG_CODE_REFILL_SECONDS,
    WrongCodeThrottle,
)
from mcp_server.localcloud.identity.scopes import Target, parse_scope
from mcp_server.localcloud.identity.tokens import TokenMinter, v1_issuer
from mcp_server.localcloud.serve import ThreadedServer
from mcp_server.localcloud.signing_keys import (
    DEFAULT_GRACE_SECONDS,
    KEYS_FILE,
    SigningKey,
    SigningKeyStore,
)
from mcp_server.localcloud.tenant import AppRegistration, Tenant, User
from mcp_server.paths import localcloud_dir

SEARCH_RESOURCE = "https://search.azure.com"
LOOPBACK_HOSTS = ("127.0.0.1", "localhost")


class IdentityPlatform:
    """An Entra ID compatible identity platform for ``tenant`` on ``https://host:port`` (port 0: any free port).

    Abuse limits (docs/identity.md): ``device_codes_per_client`` codes per client per code lifetime (then 429);
    ``wrong_code_burst`` unknown codes per address on the device-login page, then one per
    ``wrong_code_refill_seconds`` (then 429).
    """

    def __init__(
        self,
        tenant: Tenant,
        home: Path | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        device_code_lifetime: int = 900,
        key_grace_seconds: float = DEFAULT_GRACE_SECONDS,
        device_code_interval: int = 1,
        device_codes_per_client: int = MAX_CODES_PER_CLIENT,
        wrong_code_burst: int = WRONG_CODE_BURST,
        wrong_code_refill_seconds: float = WRONG_CODE_REFILL_SECONDS,
    ) -> None:
        if host not in LOOPBACK_HOSTS:
            raise ValueError(
                f"The local identity platform listens on loopback only (127.0.0.1), not {host!r}."
            )
        if home is None:
            home = localcloud_dir()
        self.tenant = tenant
        self.home = Path(home)
        self.host = host
        self.key_grace_seconds = key_grace_seconds
        self._ca_cert, tls = ensure_tls(self.home)
        self.keys = SigningKeyStore(self.home / KEYS_FILE).ensure()
        self.minter = TokenMinter(tenant, self.keys, lambda: self.base_url)
        self.devices = DeviceCodeStore(
            lifetime=device_code_lifetime,
            interval=device_code_interval,
            max_per_client=device_codes_per_client,
        )
        self.consent = ConsentBook(tenant)
        self.tokens = TokenService(
            tenant, self.minter, self.devices, self.consent, lambda: self.verification_uri
        )
        self.wrong_codes = WrongCodeThrottle(wrong_code_burst, wrong_code_refill_seconds)
        self.graph = GraphApi(tenant, self.keys, lambda: self.base_url)  # Microsoft Graph's subset
        self._context = Context(
            tenant, self.keys, self.minter, self.tokens, lambda: self.base_url, self.wrong_codes
        )
        app = IdentityApp(self._context).build(self.graph.routes())
        # No proxy headers: uvicorn would take X-Forwarded-For from loopback clients as their address, letting a
        # guesser pick a fresh address per request past the page's per-address throttle.
        self._server = ThreadedServer(
            app, name="identity", host=host, port=port, tls=tls, proxy_headers=False
        )
        self._started = False

    # -- lifecycle ---------------------------------------------------------------------------------------
    def start(self) -> IdentityPlatform:
        self._server.start()
        self._started = True
        return self

    def stop(self) -> None:
        self._server.stop()
        self._started = False

    def __enter__(self) -> IdentityPlatform:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- where things are --------------------------------------------------------------------------------
    @property
    def port(self) -> int:
        return self._server.port

    @property
    def base_url(self) -> str:
        return f"https://{self.host}:{self._server.port}"

    @property
    def authority(self) -> str:
        """The MSAL authority: ``https://127.0.0.1:PORT/<tenant id>``."""
        return f"{self.base_url}/{self.tenant.tenant_id}"

    @property
    def issuer(self) -> str:
        """``iss`` of v2 tokens (the API's tokens): ``https://127.0.0.1:PORT/<tenant id>/v2.0``."""
        return f"{self.authority}/v2.0"

    @property
    def v1_issuer(self) -> str:
        """``iss`` of v1 tokens (the OBO token for search): ``https://sts.windows.net/<tenant id>/`` as Entra."""
        return v1_issuer(self.tenant.tenant_id)

    @property
    def openid_configuration_url(self) -> str:
        return f"{self.issuer}/.well-known/openid-configuration"

    @property
    def jwks_uri(self) -> str:
        return f"{self.authority}/discovery/v2.0/keys"

    @property
    def token_endpoint(self) -> str:
        return f"{self.authority}/oauth2/v2.0/token"

    @property
    def device_endpoint(self) -> str:
        return f"{self.authority}/oauth2/v2.0/devicecode"

    @property
    def graph_endpoint(self) -> str:
        """The Microsoft Graph subset's base (``<base>/v1.0/me/...``): the MCP server's ``graph_endpoint``."""
        return self.base_url

    @property
    def verification_uri(self) -> str:
        return f"{self.base_url}/devicelogin"

    @property
    def ca_cert_path(self) -> Path:
        return self._ca_cert

    @property
    def keys_file(self) -> Path:
        return self.keys.path

    @property
    def console_client_id(self) -> str:
        return self.tenant.console_app.client_id

    @property
    def api_client_id(self) -> str:
        return self.tenant.api_app.client_id

    @property
    def api_scope(self) -> str:
        return self.tenant.api_scope

    def jwks(self) -> dict[str, Any]:
        """The published keys (as served at ``jwks_uri``), read in-process."""
        return self.keys.jwks(self.issuer)

    def user(self, login: str | User) -> User:
        """A demo user by username or the part before ``@``; KeyError naming the valid ones otherwise."""
        if isinstance(login, User):
            return login
        user = self.tenant.user_by_login(login)
        if user is None:
            known = ", ".join(u.username for u in self.tenant.users)
            raise KeyError(f"no demo user {login!r}; demo users: {known}")
        return user

    # -- key rotation (the `obo-console rotate-keys` command does the same on the file) ------------------
    def rotate_keys(self, grace_seconds: float | None = None) -> SigningKey:
        return self.keys.rotate(self.key_grace_seconds if grace_seconds is None else grace_seconds)

    # -- live changes to the directory (scenarios: what an administrator changes in the portal) ---------------
    def update_tenant(self, tenant: Tenant) -> None:
        """Serve ``tenant`` from now on (same tenant id: policies or app registrations changed)."""
        if tenant.tenant_id != self.tenant.tenant_id:
            raise ValueError("update_tenant changes a tenant's contents, never which tenant it is")
        self.tenant = tenant
        self._context.tenant = tenant
        self.tokens.tenant = tenant
        self.minter.tenant = tenant

    # -- consent switches for tests (AADSTS65001) --------------------------------------------------------
    def revoke_consent(self, user: str | User, resource: str = SEARCH_RESOURCE, *, app: str = "api") -> None:
        """Make ``user`` not consented to ``app``'s delegated access to ``resource`` (OBO then gives 65001)."""
        self.consent.set(self.tenant.app(app).client_id, resource, self.user(user).oid, False)

    def restore_consent(self, user: str | User, resource: str = SEARCH_RESOURCE, *, app: str = "api") -> None:
        """Undo ``revoke_consent``: back to what the tenant file says."""
        self.consent.set(self.tenant.app(app).client_id, resource, self.user(user).oid, None)

    @contextlib.contextmanager
    def consent_revoked(
        self, user: str | User, resource: str = SEARCH_RESOURCE, *, app: str = "api"
    ) -> Iterator[None]:
        self.revoke_consent(user, resource, app=app)
        try:
            yield
        finally:
            self.restore_consent(user, resource, app=app)

    # -- test helpers: mint tokens directly ---------------------------------------------------------------
    def issue_access_token(
        self,
        user: str | User,
        *,
        audience: str | None = None,
        scopes: tuple[str, ...] | list[str] | None = None,
        lifetime: int | None = None,
        tenant_id: str | None = None,
        issuer: str | None = None,
        client_id: str | None = None,
        extra_claims: dict[str, Any] | None = None,
        sign_with: SigningKey | None = None,
        mfa: bool = True,
        acrs: tuple[str, ...] = (),
    ) -> str:
        """A delegated access token as the platform would issue it, with the given deviations.

        ``mfa``: whether the sign-in behind it did multi-factor authentication (``amr`` ``["pwd", "mfa"]``, the
        default, so Conditional Access does not get in the way of tests about other things) or not
        (``["pwd"]``: an OBO for a resource a policy protects then answers AADSTS50076). ``acrs``: contexts.

        ``audience``: a resource (client id, identifier URI, ``https://search.azure.com``); default the MCP API
        (v2 token). Other resources get their token version (search: v1). An unknown audience makes a v2 token
        with that ``aud``. ``scopes``: default all the resource exposes (API: ``execute``; search:
        ``user_impersonation``). ``lifetime`` <= 0 makes an expired token. ``sign_with``: a key from
        ``forge_key()``. The client (``azp``/``appid``) is the console for the API and the API for search.
        """
        target = self._target(audience)
        if scopes is None:
            scopes = target.exposed_scopes or ("execute",)
        client = self.tenant.app_by_client_id(client_id) if client_id else None
        if client is None:
            client = self.tenant.api_app if target.resource is not None else self.tenant.console_app
        minted = self.minter.user_access_token(
            self.user(user),
            target,
            tuple(scopes),
            client,
            client_authenticated=not client.public_client,
            lifetime=lifetime,
            tenant_id=tenant_id,
            issuer=issuer,
            extra=extra_claims,
            sign_with=sign_with,
            amr=("pwd", "mfa") if mfa else ("pwd",),
            acrs=tuple(acrs),
        )
        return minted.token

    def issue_app_token(
        self,
        *,
        client: str = "api",
        audience: str | None = None,
        roles: tuple[str, ...] | None = None,
        lifetime: int | None = None,
        extra_claims: dict[str, Any] | None = None,
        sign_with: SigningKey | None = None,
    ) -> str:
        """An app-only token (``idtyp: app``, ``roles``, no ``scp``), as client credentials would give."""
        app: AppRegistration = self.tenant.app(client)
        target = self._target(audience)
        granted = app.granted_app_roles if roles is None else tuple(roles)
        return self.minter.app_access_token(
            app, target, granted, lifetime=lifetime, extra=extra_claims, sign_with=sign_with
        ).token

    def issue_id_token(self, user: str | User, *, client: str = "console") -> str:
        return self.minter.id_token(self.user(user), self.tenant.app(client)).token

    def forge_key(self, *, kid: str | None = None) -> SigningKey:
        """A key NOT in the JWKS. By default it claims the current key's ``kid``, so a token signed with it
        looks genuine until its signature is checked (use ``kid=`` for an unknown-key case)."""
        return SigningKey.generate(kid=kid or self.keys.current().kid)

    def _target(self, audience: str | None) -> Target:
        if audience is None:
            return Target(app=self.tenant.api_app)
        try:
            return parse_scope(self.tenant, f"{audience.rstrip('/')}/.default").target
        except (
            EntraError
        ):  # an audience no resource has: a v2-shaped token with that aud (wrong-audience tests)
            return Target(
                app=AppRegistration(
                    key="other",
                    name="other",
                    client_id=audience,
                    service_principal_id=audience,
                    requested_access_token_version=2,
                )
            )
