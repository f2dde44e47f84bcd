"""The claims challenge the tool relays when Conditional Access stops the OBO exchange (docs/server.md).

The middle tier cannot prompt anyone: when the identity platform answers ``interaction_required`` with a
``claims`` member (MFA, an authentication context), the tool fails closed and hands that ``claims`` value to the
client, base64url-encoded, the way a resource answers ``WWW-Authenticate: Bearer error="insufficient_claims",
claims="..."``. The client signs the user in again with it (MSAL's ``claims_challenge``) and calls again.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from mcp_server.server.obo import OboError

INSUFFICIENT_CLAIMS = "insufficient_claims"


def encode_claims(claims: str) -> str:
    """base64url (with padding, as Microsoft's claims challenges carry it) of the claims JSON text."""
    return base64.urlsafe_b64encode(claims.encode()).decode("ascii")


def _policy_ids(claims: str) -> list[str]:
    """The Conditional Access policy ids the challenge names (``capolids``), if it is the usual JSON."""
    try:
        parsed = json.loads(claims)
        values = parsed["access_token"]["capolids"]["values"]
    except (ValueError, KeyError, TypeError):
        return []
    return [str(v) for v in values] if isinstance(values, list) else []


def challenge_body(error: OboError, scope: str) -> dict[str, Any]:
    """The structured content of the tool error (also in ``_meta["obo_console"]["challenge"]``)."""
    assert error.claims is not None, "only an interaction_required answer with claims is a challenge"
    encoded = encode_claims(error.claims)
    code = (error.aadsts or "").removeprefix("AADSTS")
    return {
        "error": INSUFFICIENT_CLAIMS,
        "claims": encoded,
        "aadsts": int(code) if code.isdigit() else None,
        "resource": scope.removesuffix("/.default"),
        "scope": scope,
        "policy_ids": _policy_ids(error.claims),
        "reason": error.cause,
        "www_authenticate": f'Bearer error="{INSUFFICIENT_CLAIMS}", '
        f'error_description="{_quoted(error.cause)}", claims="{encoded}"',
    }


def _quoted(text: str) -> str:
    """Safe inside a quoted auth-param: no quotes, backslashes or line breaks."""
    return " ".join(text.replace("\\", "/").replace('"', "'").split())
