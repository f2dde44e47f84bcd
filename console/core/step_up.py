"""A Conditional Access claims challenge relayed by the MCP server, read defensively (docs/console-core.md).

The server's ``get_documents`` answers a tool error whose structured content is ``{"error": "insufficient_claims",
"claims": <base64url of the claims JSON>, "aadsts", "resource", "policy_ids", "reason", ...}`` when the OBO
exchange needs the user to do more (MFA). :func:`parse_challenge` turns it into a :class:`ClaimsChallenge` or
refuses it with :class:`ChallengeInvalid` saying why: a forged or garbled value never reaches MSAL or a view
as anything but a refusal.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

INSUFFICIENT_CLAIMS = "insufficient_claims"
MAX_ENCODED = 4096  # a real challenge is ~150 characters encoded
_BASE64URL = re.compile(r"^[A-Za-z0-9_\-+/]+={0,2}$")
_SHORT = re.compile(r"^[\w.:/\-]{1,200}$")  # ids, URLs: nothing that could carry markup or control characters


class ChallengeInvalid(ValueError):
    """The claims challenge cannot be used; the message says what is wrong with it."""


@dataclass(frozen=True)
class ClaimsChallenge:
    """What Conditional Access asks for: ``claims`` is the JSON text MSAL sends as ``claims_challenge``."""

    claims: str
    resource: str
    policy_ids: tuple[str, ...] = ()
    acrs: tuple[str, ...] = ()
    aadsts: int | None = None
    reason: str = ""

    @property
    def required(self) -> str:
        """What the person must do, in words."""
        if self.acrs:
            return f"multi-factor authentication (authentication context {', '.join(self.acrs)})"
        return "multi-factor authentication"

    @property
    def policy(self) -> str:
        return ", ".join(self.policy_ids) or "(not named)"

    @property
    def encoded(self) -> str:
        return base64.urlsafe_b64encode(self.claims.encode()).decode("ascii")


def is_challenge(structured: Any) -> bool:
    """Whether a tool error's structured content says it is a claims challenge (valid or not)."""
    return isinstance(structured, Mapping) and structured.get("error") == INSUFFICIENT_CLAIMS


def parse_challenge(structured: Mapping[str, Any]) -> ClaimsChallenge:
    """The challenge in a tool error's structured content; ChallengeInvalid saying what is wrong."""
    encoded = structured.get("claims")
    if not isinstance(encoded, str) or not encoded:
        raise ChallengeInvalid("it carries no 'claims' value")
    claims = decode_claims_value(encoded)
    resource = structured.get("resource")
    if not isinstance(resource, str) or not _SHORT.match(resource):
        raise ChallengeInvalid("its 'resource' is missing or not a plain URL")
    aadsts = structured.get("aadsts")
    if aadsts is not None and (not isinstance(aadsts, int) or isinstance(aadsts, bool)):
        raise ChallengeInvalid("its 'aadsts' is not a number")
    reason = structured.get("reason")
    return ClaimsChallenge(
        claims=json.dumps(claims, separators=(",", ":")),
        resource=resource,
        policy_ids=_values(claims, "capolids"),
        acrs=_values(claims, "acrs"),
        aadsts=aadsts,
        reason=" ".join(reason.split())[:300] if isinstance(reason, str) else "",
    )


def decode_claims_value(encoded: str) -> dict[str, Any]:
    """The claims JSON object a base64url ``claims`` value carries (padding optional); ChallengeInvalid if not."""
    if len(encoded) > MAX_ENCODED:
        raise ChallengeInvalid(f"its 'claims' is {len(encoded)} characters long (at most {MAX_ENCODED})")
    if not _BASE64URL.match(encoded):
        raise ChallengeInvalid("its 'claims' is not base64url")
    try:
        raw = base64.urlsafe_b64decode(
            encoded.replace("+", "-").replace("/", "_") + "=" * (-len(encoded) % 4)
        )
        claims = json.loads(raw.decode("utf-8"))
    except (binascii.Error, ValueError):
        raise ChallengeInvalid("its 'claims' does not decode to JSON") from None
    if not isinstance(claims, dict) or not claims:
        raise ChallengeInvalid("its 'claims' is not a JSON object")
    for name, section in claims.items():
        if name not in ("access_token", "id_token") or not isinstance(section, dict):
            raise ChallengeInvalid(f"its 'claims' has an unexpected member {str(name)[:40]!r}")
    if not (_values(claims, "capolids") or _values(claims, "acrs") or "mfa" in _values(claims, "amr")):
        raise ChallengeInvalid("its 'claims' asks for nothing this console can satisfy (capolids, acrs, amr)")
    return claims


def _values(claims: Mapping[str, Any], name: str) -> tuple[str, ...]:
    """``{"access_token": {name: {"values": [...]}}}`` as short plain strings; ChallengeInvalid for others."""
    member = (
        claims.get("access_token", {}).get(name) if isinstance(claims.get("access_token"), dict) else None
    )
    if member is None:
        return ()
    values = member.get("values", [member.get("value")]) if isinstance(member, dict) else None
    if not isinstance(values, list) or not all(isinstance(v, str) and _SHORT.match(v) for v in values):
        raise ChallengeInvalid(f"its 'claims' member {name!r} is not a list of short ids")
    return tuple(values)
