"""Doctor checks of the identity side: the local CA, the authority's discovery, public client flows, the token."""

from __future__ import annotations

import base64
import json
import ssl
import time
from urllib.parse import urlsplit

import httpx2
from cryptography import x509

from console.core.doctor.model import Check, CheckFailed, Doctor, failed_with_code
from mcp_server.errors import UserError

CLOCK_SKEW = 30.0  # seconds a token's iat may lie ahead of this machine's clock (the MCP server's tolerance)
TIMEOUT = 10.0


def _client(doctor: Doctor) -> httpx2.Client:
    verify: ssl.SSLContext | bool = True
    if doctor.target.ca_cert is not None:
        verify = ssl.create_default_context(cafile=str(doctor.target.ca_cert))
    return httpx2.Client(verify=verify, timeout=TIMEOUT, trust_env=doctor.target.ca_cert is None)


def local_ca(doctor: Doctor) -> str:
    path = doctor.target.ca_cert
    fix = "Restart the local stack (`obo-console server`): it makes the CA on first run and names it in the state file."
    if path is None or not path.is_file():
        raise CheckFailed(f"the local CA certificate {path} does not exist", fix)
    try:
        cert = x509.load_pem_x509_certificate(path.read_bytes())
    except ValueError as exc:
        raise CheckFailed(f"{path} is not a PEM certificate ({exc})", fix) from None
    host = urlsplit(doctor.target.authority).hostname
    try:
        with _client(doctor) as client:
            client.get(f"{doctor.target.authority}/v2.0/.well-known/openid-configuration")
    except httpx2.ConnectError as exc:
        if "CERTIFICATE" in str(exc).upper():
            raise CheckFailed(f"{host}'s certificate is not signed by {path}", fix) from None
        raise CheckFailed(f"the identity platform at {doctor.target.authority} is unreachable", fix) from None
    return f"{path} ({cert.subject.rfc4514_string()}) is trusted for {host}, for this console only"


def authority(doctor: Doctor) -> str:
    authority = doctor.target.authority
    url = f"{authority}/v2.0/.well-known/openid-configuration"
    fix = (
        "Set OBO_CONSOLE_TENANT_ID to Entra admin center > Overview > Tenant ID (or OBO_CONSOLE_AUTHORITY to "
        "https://login.microsoftonline.com/<tenant id>)."
    )
    try:
        with _client(doctor) as client:
            response = client.get(url)
            document = response.json() if response.status_code == 200 else {}
            if response.status_code != 200:
                code = _aadsts(response)
                raise failed_with_code(f"discovery at {url} answered HTTP {response.status_code}", code, fix)
            keys = client.get(str(document.get("jwks_uri"))).json().get("keys", [])
    except (httpx2.HTTPError, ValueError) as exc:
        raise CheckFailed(f"discovery at {url} is unreachable ({type(exc).__name__})", fix) from None
    issuer = f"{authority}/v2.0"
    if document.get("issuer") != issuer:
        raise CheckFailed(f"discovery names issuer {document.get('issuer')}, expected {issuer}", fix)
    doctor.found.discovery = document
    doctor.found.jwks_kids = {str(k.get("kid")) for k in keys if isinstance(k, dict)}
    return f"{authority}: discovery and {len(keys)} signing key(s)"


def public_client(doctor: Doctor) -> str:
    """Starts a device-code sign-in and abandons it: the only way to learn whether the app allows it."""
    target = doctor.target
    endpoint = doctor.found.discovery.get("device_authorization_endpoint") or (
        f"{target.authority}/oauth2/v2.0/devicecode"
    )
    fix = (
        "Entra admin center > App registrations > the console app > Authentication > Advanced settings > "
        "Allow public client flows: Yes."
    )
    try:
        with _client(doctor) as client:
            response = client.post(
                endpoint, data={"client_id": target.console_client_id, "scope": target.api_scope}
            )
    except httpx2.HTTPError as exc:
        raise CheckFailed(f"the device-code endpoint is unreachable ({type(exc).__name__})", fix) from None
    if response.status_code != 200 or "user_code" not in _json(response):
        code = _aadsts(response)
        raise failed_with_code(
            f"the console app {target.console_client_id} may not start a device-code sign-in", code, fix
        )
    return f"the console app {target.console_client_id} may use the device-code flow"


def token(doctor: Doctor) -> str:
    try:
        value, claims = doctor.token_source()
    except UserError as exc:
        raise CheckFailed(exc.message, exc.hint or "Sign in: `obo-console login`.") from None
    doctor.found.token, doctor.found.claims = value, claims
    target, now = doctor.target, time.time()
    again = "Sign in again: `obo-console login` (local mode: `obo-console login --as alice`)."
    expected_aud = target.api_client_id
    if expected_aud and claims.get("aud") != expected_aud:
        raise CheckFailed(
            f"the token's audience is {claims.get('aud')}, not the API {expected_aud}",
            "Set OBO_CONSOLE_API_SCOPE to api://<API client id>/execute (Expose an API on the API app), then sign "
            "in again.",
        )
    wanted = target.api_scope.rsplit("/", 1)[-1]
    if wanted not in str(claims.get("scp", "")).split():
        raise CheckFailed(
            f"the token's scopes are {claims.get('scp')!r}, without {wanted}",
            "App registrations > the API app > Expose an API > add the scope; the console app > API permissions "
            "> add it and Grant admin consent. Then sign in again.",
        )
    if float(claims.get("exp", 0)) <= now:
        raise CheckFailed("the token has expired", again)
    ahead = float(claims.get("iat", now)) - now
    if ahead > CLOCK_SKEW:
        raise CheckFailed(
            f"the token was issued {ahead:.0f} s in this machine's future (clock skew over {CLOCK_SKEW:.0f} s)",
            "Sync this machine's clock (Settings > Time & language > Sync now; `timedatectl set-ntp true`).",
        )
    kid = _kid(value.get_secret_value())
    if doctor.found.jwks_kids and kid not in doctor.found.jwks_kids:
        raise CheckFailed(
            f"the token is signed with key {kid}, which the authority no longer publishes (rotated without grace)",
            again,
        )
    left = int(float(claims["exp"]) - now)
    return f"aud {claims.get('aud')}, scp {claims.get('scp')}, expires in {left} s, key {kid} published"


def _kid(jwt: str) -> str:
    head = jwt.split(".", 1)[0]
    try:
        return str(json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4))).get("kid"))
    except ValueError:
        return "?"


def _json(response: httpx2.Response) -> dict[str, object]:
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _aadsts(response: httpx2.Response) -> str | None:
    codes = _json(response).get("error_codes")
    return f"AADSTS{codes[0]}" if isinstance(codes, list) and codes else None


CHECKS = [
    Check("local_ca", "the local CA trusted", local_ca, applies=lambda d: d.target.mode == "local"),
    Check("authority", "authority and discovery reachable", authority, needs=("local_ca",)),
    Check("public_client", "the console app allows public client flows", public_client, needs=("authority",)),
    Check("token", "the signed-in token: audience, scopes, expiry, clock", token, needs=("authority",)),
]
