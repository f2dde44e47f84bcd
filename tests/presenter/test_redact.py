"""The one masker: JWT-shaped strings, bearer tokens, secret pairs, secret-named fields and remembered secrets."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from mcp_server.redact import MASK, contains_secret, forget_secrets, redact, redact_value, remember_secret

JWT = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLXZhbHVl"


@pytest.fixture(autouse=True)
def clean_registry() -> Iterator[None]:
    forget_secrets()
    yield
    forget_secrets()


def test_token_shapes_are_masked_in_free_text() -> None:
    assert redact(f"token={JWT} and more") == "token=*** and more"
    assert redact(f"Authorization: Bearer {JWT}") == "Authorization: Bearer ***"
    assert redact("Bearer abcdefgh12345678 ok") == "Bearer *** ok"
    assert redact('{"client_secret": "hunter2-x", "user_code": "ABCD-EFGH"}') == (
        '{"client_secret": "***", "user_code": "***"}'
    )
    assert redact("key sk-abcdefghijklmnop1234") == "key ***"
    assert redact(f"x{JWT}") == "x***"  # glued to a word: still a token
    assert redact("an ordinary sentence about eyJ and tokens") == "an ordinary sentence about eyJ and tokens"


def test_remembered_secrets_are_masked_everywhere_from_then_on() -> None:
    assert redact("the api key is Zq8vK3pL0s") == "the api key is Zq8vK3pL0s"
    remember_secret(SecretStr("Zq8vK3pL0s"))
    remember_secret("abc")  # too short to mask safely: ignored
    assert redact("the api key is Zq8vK3pL0s") == f"the api key is {MASK}"
    assert redact("abc stays") == "abc stays"
    assert redact("code WXYZ-1234 here", known=["WXYZ-1234"]) == "code *** here"
    assert contains_secret("…Zq8vK3pL0s…") and contains_secret(JWT) and not contains_secret("plain")


def test_nested_values_are_masked_by_key_and_by_shape() -> None:
    value = {
        "access_token": "opaque-value",
        "input_tokens": 12,
        "note": f"copied {JWT}",
        "list": [JWT, {"password": "p@ss", "name": "Alice"}],
        "held": SecretStr("never shown"),
        "aud": "https://search.azure.com",
    }
    assert redact_value(value) == {
        "access_token": MASK,
        "input_tokens": 12,
        "note": "copied ***",
        "list": [MASK, {"password": MASK, "name": "Alice"}],
        "held": MASK,
        "aud": "https://search.azure.com",
    }
    assert value["access_token"] == "opaque-value"  # a copy: the original is untouched


def test_tracing_uses_the_one_masker_including_remembered_secrets(tmp_path: Path) -> None:
    """console.core.agents.tracing masks with redact() itself, so what it writes is masked like everything else
    — remembered secrets too, which no pattern recognises."""
    from console.core.agents import tracing

    assert tracing.mask_text is redact and tracing.mask is redact_value and tracing.MASK == MASK
    remember_secret("Zq8vK3pL0s-search-key")
    processor = tracing.LocalJsonlProcessor(tmp_path)
    processor._write(
        {"span_data": {"output": f"Bearer {JWT} key=Zq8vK3pL0s-search-key", "client_secret": "s3cr3t!"}}
    )
    written = processor.path.read_text()
    assert JWT not in written and "Zq8vK3pL0s-search-key" not in written and "s3cr3t!" not in written
    assert json.loads(written) == {"span_data": {"output": "Bearer *** key=***", "client_secret": MASK}}
