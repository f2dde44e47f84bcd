"""Every AADSTS code this project can meet: what it means and how to fix it, in the words of the Entra portal.

One table for everything that shows a code: the MCP server's tool errors, the console's presenter and events,
``obo-console ask`` and ``obo-console doctor``. ``docs/aadsts.md`` is generated from it (``markdown()``; a test keeps
the two equal), and a test checks that every code the local identity platform raises is here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Aadsts:
    code: int
    meaning: str  # what went wrong, in a sentence a presenter can say
    fix: str  # what to change, where (portal blade and setting, or the command to run)
    step: str  # where in the chain it happens: sign-in, obo, token, authorize

    @property
    def label(self) -> str:
        return f"AADSTS{self.code}"


_API = "the API app registration (the MCP server's)"
_CONSOLE = "the console app registration"

_TABLE: tuple[Aadsts, ...] = (
    # -- the on-behalf-of exchange on the MCP server --------------------------------------------------------
    Aadsts(
        65001,
        "consent is missing for the API to call Azure AI Search",
        f"Entra admin center > App registrations > {_API} > API permissions > Azure AI Search "
        "user_impersonation > Grant admin consent for <tenant>.",
        "obo",
    ),
    Aadsts(
        7000215,
        "the MCP server's client secret is wrong",
        f"App registrations > {_API} > Certificates & secrets > New client secret; put its Value (not the "
        "Secret ID) in OBO_CONSOLE_API_CLIENT_SECRET and restart the server.",
        "obo",
    ),
    Aadsts(
        7000222,
        "the MCP server's client secret has expired",
        f"App registrations > {_API} > Certificates & secrets > New client secret (the old one shows as "
        "Expired); put its Value in OBO_CONSOLE_API_CLIENT_SECRET and restart the server.",
        "obo",
    ),
    Aadsts(
        7000218,
        "the app sent no client secret, or (device code) the console app does not allow public client flows",
        f"App registrations > {_CONSOLE} > Authentication > Advanced settings > Allow public client flows: Yes. "
        "For the API: set OBO_CONSOLE_API_CLIENT_SECRET.",
        "sign-in",
    ),
    Aadsts(
        500133,
        "the user's token expired before the exchange",
        "Sign in again (obo-console login); check this machine's clock (Settings > Time & language > Sync now).",
        "obo",
    ),
    Aadsts(
        50013,
        "the user's token (assertion) was rejected",
        "Sign in again to get a token signed with the tenant's current key; make sure the MCP server and the "
        "console use the same tenant (OBO_CONSOLE_TENANT_ID).",
        "obo",
    ),
    Aadsts(
        500131,
        "the user's token was not issued for this API",
        f"The console must request the API's scope (Expose an API on {_API}: api://<API client id>/execute); "
        "set OBO_CONSOLE_API_SCOPE / OBO_CONSOLE_API_CLIENT_ID to the API's, then sign in again.",
        "obo",
    ),
    Aadsts(
        50027,
        "the user's token is malformed",
        "Sign in again; check that nothing between the console and the MCP server rewrites the Authorization "
        "header.",
        "obo",
    ),
    Aadsts(
        240002,
        "an ID token was sent where an access token belongs",
        "The console must send the access token for the API's scope, not the ID token; sign in again.",
        "obo",
    ),
    Aadsts(
        50076,
        "Conditional Access requires multi-factor authentication the sign-in has not done",
        "Sign in again and complete the second step (the console asks for it). Policy: Entra admin center > "
        "Protection > Conditional Access > the policy named in the challenge > Grant.",
        "obo",
    ),
    Aadsts(
        50079,
        "the user must register for multi-factor authentication",
        "The user registers a second factor at https://aka.ms/mfasetup, then signs in again.",
        "obo",
    ),
    Aadsts(
        53003,
        "Conditional Access blocked this sign-in",
        "Entra admin center > Protection > Conditional Access > the blocking policy (Sign-in logs > Conditional "
        "Access tab names it) > exclude the user or the flow, or sign in another way.",
        "sign-in",
    ),
    Aadsts(
        700016,
        "the MCP server's app is not registered in the tenant",
        "Check OBO_CONSOLE_CONSOLE_CLIENT_ID / OBO_CONSOLE_API_CLIENT_ID against App registrations > Overview > "
        "Application (client) ID, and OBO_CONSOLE_TENANT_ID against Directory (tenant) ID.",
        "sign-in",
    ),
    Aadsts(
        90002,
        "the tenant in the authority does not exist",
        "Set OBO_CONSOLE_TENANT_ID to Entra admin center > Overview > Tenant ID (or the primary domain).",
        "sign-in",
    ),
    Aadsts(
        90009,
        "the API asked for a token for itself",
        "Use the API's Application (client) ID GUID in the scope it requests for itself.",
        "obo",
    ),
    Aadsts(
        70011,
        "the requested scope is not valid",
        f"Expose an API on {_API} must define the scope (execute); request api://<API client id>/execute.",
        "sign-in",
    ),
    Aadsts(
        700022,
        "the requested scopes name more than one resource",
        "Request scopes of one resource per token (the API's, or Azure AI Search's /.default), not both.",
        "sign-in",
    ),
    Aadsts(
        1002012,
        "client credentials need a /.default scope",
        "Request <resource>/.default for an app-only token.",
        "sign-in",
    ),
    Aadsts(
        500011,
        "the requested resource is not registered in the tenant",
        "Check the scope's resource: the API's Application ID URI (Expose an API) or https://search.azure.com.",
        "sign-in",
    ),
    Aadsts(
        65004,
        "the user declined to consent to the app",
        "Sign in again and accept, or have an administrator grant consent (API permissions > Grant admin "
        "consent).",
        "sign-in",
    ),
    Aadsts(
        50011,
        "the redirect URI is not registered for the app",
        f"App registrations > {_CONSOLE} > Authentication > Mobile and desktop applications > add "
        "http://localhost.",
        "sign-in",
    ),
    Aadsts(
        50034,
        "the user account does not exist in the tenant",
        "Sign in with an account of this tenant (Entra admin center > Users), or invite it as a guest.",
        "sign-in",
    ),
    Aadsts(
        70016, "the device-code sign-in is still waiting for the user", "Finish the sign-in page.", "sign-in"
    ),
    Aadsts(
        70018,
        "the code typed on the sign-in page is not valid",
        "Type the code the console shows.",
        "sign-in",
    ),
    Aadsts(
        70020, "the device code expired before the sign-in finished", "Start the sign-in again.", "sign-in"
    ),
    Aadsts(70000, "the grant was declined, expired or issued to another client", "Sign in again.", "sign-in"),
    Aadsts(
        700082,
        "the refresh token expired after a long idle time",
        "Sign in again (obo-console login).",
        "sign-in",
    ),
    Aadsts(70008, "the authorization code expired", "Sign in again.", "sign-in"),
    Aadsts(54005, "the code was already redeemed", "Sign in again.", "sign-in"),
    Aadsts(
        500112,
        "the reply address differs from the one the code was requested with",
        "Use the same redirect URI in the request and the redemption.",
        "sign-in",
    ),
    Aadsts(501481, "the PKCE code verifier does not match the challenge", "Sign in again.", "sign-in"),
    Aadsts(
        501491, "the PKCE code challenge has the wrong size", "Send a 43-character S256 challenge.", "sign-in"
    ),
    Aadsts(9002325, "PKCE is required", "Send code_challenge with code_challenge_method=S256.", "sign-in"),
    Aadsts(
        700054,
        "the response type is not enabled for the app",
        "Use response_type=code with PKCE (the console does).",
        "sign-in",
    ),
    Aadsts(
        700025,
        "a public client (the console) sent a secret",
        f"Remove the secret from the console's settings; {_CONSOLE} is a public client.",
        "sign-in",
    ),
    Aadsts(
        700027,
        "a certificate assertion was sent but no certificate is registered",
        f"Use the client secret, or upload the certificate under {_API} > Certificates & secrets.",
        "obo",
    ),
    Aadsts(
        70003, "the grant type is not supported", "Use device code, authorization code or OBO.", "sign-in"
    ),
    Aadsts(
        900144,
        "a required request parameter is missing",
        "A client bug or an outdated client: update obo-console.",
        "sign-in",
    ),
    Aadsts(
        9002313,
        "the request is malformed (an unknown or reused code or refresh token)",
        "Sign in again.",
        "sign-in",
    ),
    Aadsts(
        901002,
        "the v1 'resource' parameter was sent to the v2 endpoint",
        "Request scopes (resource/.default), not a resource.",
        "sign-in",
    ),
    Aadsts(
        90100,
        "the 'claims' parameter (a Conditional Access challenge) is not valid",
        "Retry with the claims challenge exactly as the MCP server relayed it.",
        "sign-in",
    ),
    Aadsts(
        50196,
        "the client repeated the same request too often and is throttled",
        "Wait for the Retry-After seconds, then try again.",
        "sign-in",
    ),
)

AADSTS: dict[int, Aadsts] = {entry.code: entry for entry in _TABLE}
_CODE = re.compile(r"AADSTS(\d{4,8})")


def lookup(code: int | str | None) -> Aadsts | None:
    """The entry for ``65001``, ``"65001"`` or ``"AADSTS65001"``; None for anything else."""
    if code is None:
        return None
    text = str(code).strip().upper().removeprefix("AADSTS")
    return AADSTS.get(int(text)) if text.isdigit() else None


def codes_in(text: str) -> list[Aadsts]:
    """The known codes a text (an error message) names, in order, each once."""
    seen: dict[int, Aadsts] = {}
    for match in _CODE.finditer(text or ""):
        entry = AADSTS.get(int(match.group(1)))
        if entry is not None:
            seen.setdefault(entry.code, entry)
    return list(seen.values())


def explain(code: int | str | None) -> str | None:
    """``AADSTS65001: <meaning>. Fix: <fix>`` for a known code, else None."""
    entry = lookup(code)
    return f"{entry.label}: {entry.meaning}. Fix: {entry.fix}" if entry else None


def markdown() -> str:
    """docs/aadsts.md, generated from the table."""
    lines = [
        "# AADSTS codes",
        "",
        "Every AADSTS code OBO Console can meet, what it means and the fix (generated from `mcp_server/aadsts.py`;",
        "the console, `ask` and `doctor` show the same words). *Step*: where in the chain the code arrives.",
        "",
        "| Code | Step | Meaning | Fix |",
        "|---|---|---|---|",
    ]
    for entry in sorted(_TABLE, key=lambda e: (e.step != "obo", e.step, e.code)):
        lines.append(f"| {entry.label} | {entry.step} | {entry.meaning} | {entry.fix.replace('|', '/')} |")
    return "\n".join(lines) + "\n"
