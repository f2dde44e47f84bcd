"""Hostile tokens for the MCP server's token checks: forged ones (not validly signed by the local identity
platform) and wrongly-claimed ones (signed with the platform's own current key, claims bent one at a time).

Every builder starts from a genuine token the platform issues for alice, so each case differs from an accepted
token in exactly the way its name says.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding
from cryptography.hazmat.primitives.hashes import SHA256

from mcp_server.localcloud.signing_keys import SigningKey
from mcp_server.stack import LocalStack


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64json(value: Any) -> str:
    # allow_nan: Python's json writes Infinity/NaN, which the server's JSON parser reads back as floats
    return b64(json.dumps(value, allow_nan=True).encode())


@dataclass
class Forge:
    """Token builders around one stack; ``claims()`` are a genuine alice token's claims, freshly timed."""

    stack: LocalStack

    @property
    def key(self) -> SigningKey:
        return self.stack.identity.keys.current()

    def genuine(self, login: str = "alice") -> str:
        return self.stack.identity.issue_access_token(login)

    def oid(self, login: str) -> str:
        user = self.stack.tenant.user_by_login(login)
        assert user is not None
        return user.oid

    def claims(self, login: str = "alice") -> dict[str, Any]:
        return dict(jwt.decode(self.genuine(login), options={"verify_signature": False}))

    def header(self, **extra: Any) -> dict[str, Any]:
        return {"alg": "RS256", "typ": "JWT", "kid": self.key.kid} | extra

    def rs256(self, header: dict[str, Any], payload: str) -> str:
        """A JWS signed with the platform's real key over exactly these (already encoded) segments."""
        signing_input = f"{b64json(header)}.{payload}".encode()
        signature = self.key.private_key.sign(signing_input, padding.PKCS1v15(), SHA256())
        return f"{signing_input.decode()}.{b64(signature)}"

    def signed(self, claims: dict[str, Any], **header: Any) -> str:
        """``claims`` signed by the platform's own key, as the platform signs (RS256, its kid)."""
        return self.rs256(self.header(**header), b64json(claims))

    def bent(self, change: Callable[[dict[str, Any]], None]) -> str:
        claims = self.claims()
        change(claims)
        return self.signed(claims)

    def with_claims(self, **values: Any) -> str:
        return self.bent(lambda c: c.update(values))

    def without(self, *names: str) -> str:
        return self.bent(lambda c: [c.pop(n, None) for n in names])

    def hmac(self, secret: bytes, alg: str = "HS256") -> str:
        digest = {"HS256": hashlib.sha256, "HS512": hashlib.sha512}[alg]
        signing_input = f"{b64json(self.header(alg=alg))}.{b64json(self.claims())}".encode()
        return f"{signing_input.decode()}.{b64(hmac.new(secret, signing_input, digest).digest())}"

    def public_pem(self) -> bytes:
        return self.key.private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def tampered(self, **values: Any) -> str:
        """A genuine token whose payload was edited after signing (the signature is the original one)."""
        head, _, signature = self.genuine().split(".")
        return f"{head}.{b64json(self.claims() | values)}.{signature}"

    def spliced(self) -> str:
        """alice's header and payload with bob's (genuine) signature."""
        head, payload, _ = self.genuine("alice").split(".")
        return f"{head}.{payload}.{self.genuine('bob').split('.')[2]}"

    def other_alg_real_key(self, alg: str) -> str:
        return jwt.encode(self.claims(), self.key.private_key, algorithm=alg, headers={"kid": self.key.kid})

    def attacker_signed(
        self, *, kid: str | None = None, claims: dict[str, Any] | None = None, **header: Any
    ) -> str:
        attacker = SigningKey.generate(kid=kid or self.key.kid)
        payload = self.claims() | (claims or {})
        return jwt.encode(
            payload, attacker.private_key, algorithm="RS256", headers={"kid": attacker.kid, **header}
        )

    def es256(self) -> str:
        key = ec.generate_private_key(ec.SECP256R1())
        return jwt.encode(self.claims(), key, algorithm="ES256", headers={"kid": self.key.kid})


Builder = Callable[[Forge], str]


@dataclass(frozen=True)
class Case:
    """One hostile token and the exact refusal it must get."""

    name: str
    build: Builder
    reason: str  # auth_failures_total{reason}
    status: int = 401
    error: str = "invalid_token"


def _jwk_json(f: Forge) -> bytes:
    return json.dumps(f.key.public_jwk()).encode()


# Not validly signed by the platform (or not a JWS at all). Status 401 invalid_token unless said otherwise.
FORGED: list[Case] = [
    Case("another_key_with_the_real_kid", lambda f: f.attacker_signed(), "bad_signature"),
    # A forged token is a forgery whatever its claims say: counted as bad_signature, not by its claims.
    Case("another_key_expired_claims", lambda f: f.attacker_signed(claims={"exp": 1}), "bad_signature"),
    Case(
        "another_key_other_issuer",
        lambda f: f.attacker_signed(claims={"iss": "https://evil.example/v2.0"}),
        "bad_signature",
    ),
    Case("another_key_no_exp", lambda f: f.attacker_signed(claims={"exp": None}), "bad_signature"),
    Case("another_key_unknown_kid", lambda f: f.attacker_signed(kid="attacker-key-1"), "unknown_key"),
    Case("kid_path_traversal", lambda f: f.attacker_signed(kid="../../signing-keys.json"), "unknown_key"),
    Case(
        "attacker_jku_header",
        lambda f: f.attacker_signed(kid="k2", jku="http://127.0.0.1:9/jwks"),
        "unknown_key",
    ),
    Case(
        "attacker_x5u_header", lambda f: f.attacker_signed(x5u="http://127.0.0.1:9/cert.pem"), "bad_signature"
    ),
    Case(
        "embedded_attacker_jwk",
        lambda f: f.attacker_signed(jwk={"kty": "RSA", "n": "AQAB", "e": "AQAB"}),
        "bad_signature",
    ),
    Case(
        "no_kid_real_key", lambda f: f.rs256({"alg": "RS256", "typ": "JWT"}, b64json(f.claims())), "no_key_id"
    ),
    Case("kid_number", lambda f: f.rs256(f.header(kid=1), b64json(f.claims())), "no_key_id"),
    Case("kid_list", lambda f: f.rs256(f.header(kid=[f.key.kid]), b64json(f.claims())), "no_key_id"),
    Case(
        "alg_none_unsigned",
        lambda f: f"{b64json(f.header(alg='none'))}.{b64json(f.claims())}.",
        "wrong_algorithm",
    ),
    Case(
        "alg_none_real_signature",
        lambda f: f"{b64json(f.header(alg='none'))}.{b64json(f.claims())}.{f.genuine().split('.')[2]}",
        "wrong_algorithm",
    ),
    Case(
        "alg_NONE_uppercase",
        lambda f: f"{b64json(f.header(alg='NONE'))}.{b64json(f.claims())}.",
        "wrong_algorithm",
    ),
    Case(
        "alg_missing",
        lambda f: f.rs256({"typ": "JWT", "kid": f.key.kid}, b64json(f.claims())),
        "wrong_algorithm",
    ),
    Case("hs256_public_key_pem_as_secret", lambda f: f.hmac(f.public_pem()), "wrong_algorithm"),
    Case("hs256_public_jwk_as_secret", lambda f: f.hmac(_jwk_json(f)), "wrong_algorithm"),
    Case("hs512_guessed_secret", lambda f: f.hmac(b"secret", "HS512"), "wrong_algorithm"),
    Case("rs512_real_key", lambda f: f.other_alg_real_key("RS512"), "wrong_algorithm"),
    Case("ps256_real_key", lambda f: f.other_alg_real_key("PS256"), "wrong_algorithm"),
    Case("es256_attacker_key", lambda f: f.es256(), "wrong_algorithm"),
    Case(
        "payload_oid_changed_to_bob",
        lambda f: f.tampered(oid=f.oid("bob")),
        "bad_signature",
    ),
    Case(
        "payload_exp_extended", lambda f: f.tampered(exp=int(time.time()) + 10 * 365 * 86400), "bad_signature"
    ),
    Case(
        "payload_groups_widened",
        lambda f: f.tampered(groups=[g.id for g in f.stack.tenant.groups]),
        "bad_signature",
    ),
    Case(
        "header_edited_after_signing",
        lambda f: f"{b64json(f.header(typ='at+jwt'))}.{f.genuine().split('.', 1)[1]}",
        "bad_signature",
    ),
    Case("signature_spliced_from_bob", lambda f: f.spliced(), "bad_signature"),
    Case("signature_truncated", lambda f: f.genuine()[:-10], "bad_signature"),
    Case("signature_empty", lambda f: f.genuine().rsplit(".", 1)[0] + ".", "bad_signature"),
    Case("crit_header_real_key", lambda f: f.signed(f.claims(), crit=["exp"], exp=1), "unsupported_header"),
    Case("payload_not_json_real_key", lambda f: f.rs256(f.header(), b64(b"alice")), "malformed"),
    Case("payload_json_array_real_key", lambda f: f.rs256(f.header(), b64json([f.claims()])), "malformed"),
    Case("two_segments", lambda f: f.genuine().rsplit(".", 1)[0], "malformed"),
    Case("five_segments_jwe_shape", lambda f: f.genuine() + ".AAAA.BBBB", "malformed"),
    Case("header_not_base64", lambda f: "!!!." + f.genuine().split(".", 1)[1], "malformed"),
    Case("header_json_array", lambda f: b64json(["RS256"]) + "." + f.genuine().split(".", 1)[1], "malformed"),
    Case(
        "header_json_nested_5000_deep",
        lambda f: b64(b"[" * 5000 + b"]" * 5000) + "." + f.genuine().split(".", 1)[1],
        "malformed",
    ),
    Case(
        "payload_json_nested_5000_deep",
        lambda f: f"{b64json(f.header())}.{b64(b'[' * 5000 + b']' * 5000)}.AAAA",
        "bad_signature",
    ),
    Case(
        "payload_json_nested_real_key",
        lambda f: f.rs256(f.header(), b64(b"[" * 5000 + b"]" * 5000)),
        "malformed",
    ),
    Case("garbage", lambda f: "not-a-token", "malformed"),
    Case(
        "oversized_12k_token", lambda f: f"{b64json(f.header())}.{'A' * 12_000}.{'B' * 342}", "bad_signature"
    ),
]


def _now() -> int:
    return int(time.time())


def _other_issuer(f: Forge) -> str:
    return f.stack.identity.minter.issuer(str(uuid.uuid4()))


def _app_only_token(f: Forge) -> str:
    return f.stack.identity.issue_app_token(client="api", audience=f.stack.tenant.api_app.client_id)


# Signed with the platform's own key; one claim wrong each. All carry alice's oid unless the case removes it.
WRONG_CLAIMS: list[Case] = [
    Case("exp_missing", lambda f: f.without("exp"), "missing_claims"),
    Case("iat_missing", lambda f: f.without("iat"), "missing_claims"),
    Case("nbf_missing", lambda f: f.without("nbf"), "missing_claims"),
    Case("exp_iat_nbf_missing", lambda f: f.without("exp", "iat", "nbf"), "missing_claims"),
    Case("exp_numeric_string", lambda f: f.with_claims(exp=str(_now() + 3600)), "invalid_claims"),
    Case("exp_word", lambda f: f.with_claims(exp="soon"), "invalid_claims"),
    Case("exp_true", lambda f: f.with_claims(exp=True), "invalid_claims"),
    Case("exp_null", lambda f: f.with_claims(exp=None), "invalid_claims"),
    Case("exp_infinity", lambda f: f.with_claims(exp=math.inf), "invalid_claims"),
    Case("exp_nan", lambda f: f.with_claims(exp=math.nan), "invalid_claims"),
    Case("exp_list", lambda f: f.with_claims(exp=[_now() + 3600]), "invalid_claims"),
    Case("iat_string", lambda f: f.with_claims(iat="now"), "invalid_claims"),
    Case("nbf_string", lambda f: f.with_claims(nbf=str(_now())), "invalid_claims"),
    Case("nbf_object", lambda f: f.with_claims(nbf={"t": _now()}), "invalid_claims"),
    Case("nbf_an_hour_ahead", lambda f: f.with_claims(nbf=_now() + 3600), "not_yet_valid"),
    Case("nbf_beyond_clock_skew", lambda f: f.with_claims(nbf=_now() + 120), "not_yet_valid"),
    Case("iat_an_hour_ahead", lambda f: f.with_claims(iat=_now() + 3600), "not_yet_valid"),
    Case(
        "expired_a_minute_ago",
        lambda f: f.stack.identity.issue_access_token("alice", lifetime=-60),
        "expired",
    ),
    Case("exp_is_now", lambda f: f.with_claims(exp=_now()), "expired"),
    Case("aud_random", lambda f: f.with_claims(aud=str(uuid.uuid4())), "wrong_audience"),
    Case(
        "aud_identifier_uri_v1_not_accepted",
        lambda f: f.with_claims(aud=f"api://{f.stack.tenant.api_app.client_id}"),
        "wrong_audience",
    ),
    Case(
        "aud_list_with_the_api",
        lambda f: f.with_claims(aud=[f.stack.tenant.api_app.client_id, "other"]),
        "invalid_claims",
    ),
    Case("id_token_for_the_console", lambda f: f.stack.identity.issue_id_token("alice"), "wrong_audience"),
    Case(
        "search_token_v1",
        lambda f: f.stack.identity.issue_access_token(
            "alice", audience="https://search.azure.com", scopes=("user_impersonation",)
        ),
        "wrong_issuer",
    ),
    Case("iss_other_tenant", lambda f: f.with_claims(iss=_other_issuer(f)), "wrong_issuer"),
    Case("iss_trailing_slash", lambda f: f.bent(lambda c: c.update(iss=c["iss"] + "/")), "wrong_issuer"),
    Case(
        "iss_v1_with_v2_claims",
        lambda f: f.with_claims(iss=f"https://sts.windows.net/{f.stack.tenant.tenant_id}/"),
        "wrong_issuer",
    ),
    Case("tid_other_tenant", lambda f: f.with_claims(tid=str(uuid.uuid4())), "tenant_not_allowed"),
    Case("tid_missing", lambda f: f.without("tid"), "tenant_not_allowed"),
    Case(
        "scope_says_execute_scp_says_read",
        lambda f: f.with_claims(scope="execute", scp="read"),
        "insufficient_scope",
        403,
        "insufficient_scope",
    ),
    Case(
        "scope_says_execute_no_scp",
        lambda f: f.bent(lambda c: (c.pop("scp"), c.update(scope="execute"))),
        "app_only_token",
    ),
    Case(
        "scp_read_only", lambda f: f.with_claims(scp="read"), "insufficient_scope", 403, "insufficient_scope"
    ),
    Case(
        "scp_upper_case",
        lambda f: f.with_claims(scp="EXECUTE"),
        "insufficient_scope",
        403,
        "insufficient_scope",
    ),
    Case("scp_list", lambda f: f.with_claims(scp=["execute"]), "invalid_claims"),
    Case("scp_empty", lambda f: f.with_claims(scp=""), "app_only_token"),
    Case("idtyp_app_with_scp", lambda f: f.with_claims(idtyp="app"), "app_only_token"),
    Case("app_only_client_credentials", _app_only_token, "app_only_token"),
    Case(
        "roles_instead_of_scp",
        lambda f: f.bent(lambda c: (c.pop("scp"), c.update(roles=["execute"]))),
        "app_only_token",
    ),
    Case("oid_missing", lambda f: f.without("oid"), "no_oid"),
    Case("oid_empty", lambda f: f.with_claims(oid=""), "no_oid"),
    Case("oid_number", lambda f: f.with_claims(oid=42), "invalid_claims"),
    Case(
        "oid_list_of_two_users", lambda f: f.bent(lambda c: c.update(oid=[c["oid"], "x"])), "invalid_claims"
    ),
    Case("sub_number", lambda f: f.with_claims(sub=7), "invalid_claims"),
    Case("azp_list", lambda f: f.bent(lambda c: c.update(azp=[c["azp"]])), "invalid_claims"),
    Case("groups_a_string", lambda f: f.with_claims(groups="Finance"), "invalid_claims"),
    Case("ver_missing", lambda f: f.without("ver"), "wrong_token_version"),
    Case("ver_1_with_v2_issuer", lambda f: f.with_claims(ver="1.0"), "wrong_token_version"),
]
