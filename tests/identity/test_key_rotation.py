"""Signing-key rotation with `obo-console rotate-keys` against a running platform: new tokens carry the new kid,
old tokens validate during the grace period and are rejected after it."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import jwt
import pytest
import requests

from console.cli import main
from console.core.clock import FixedClock
from mcp_server.localcloud.ca import trusting_session
from mcp_server.localcloud.identity.platform import IdentityPlatform
from mcp_server.localcloud.signing_keys import KEYS_FILE
from mcp_server.localcloud.tenant import Tenant
from mcp_server.paths import localcloud_dir
from tests.identity.helpers import assert_entra_error


@pytest.fixture
def platform(demo_tenant: Tenant, isolated_home: Path) -> Iterator[IdentityPlatform]:
    """A platform in this test's OBO_CONSOLE_HOME, where the command looks for the key file."""
    with IdentityPlatform(demo_tenant) as idp:
        assert idp.home == localcloud_dir()
        yield idp


def _verify(session: requests.Session, idp: IdentityPlatform, token: str) -> dict:
    """Validate as an API would: the JWKS fetched over HTTPS, the key picked by kid."""
    jwks = jwt.PyJWKSet.from_dict(session.get(idp.jwks_uri).json())
    kid = jwt.get_unverified_header(token)["kid"]
    matches = [k for k in jwks.keys if k.key_id == kid]
    if not matches:
        raise LookupError(f"kid {kid} is not in the JWKS")
    return jwt.decode(
        token, matches[0].key, algorithms=["RS256"], audience=idp.api_client_id, issuer=idp.issuer
    )


def _obo(session: requests.Session, idp: IdentityPlatform, token: str) -> requests.Response:
    return session.post(
        idp.token_endpoint,
        data={
            "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
            "client_id": idp.api_client_id,
            "client_secret": idp.tenant.api_app.client_secret.get_secret_value(),  # type: ignore[union-attr]
            "assertion": token,
            "scope": "https://search.azure.com/.default",
            "requested_token_use": "on_behalf_of",
        },
    )


def test_rotate_keys_command_against_a_running_platform(platform: IdentityPlatform) -> None:
    keys_file = localcloud_dir() / KEYS_FILE
    clock = FixedClock(time.time())  # the platform's "now" for retired keys: it moves only when told to
    platform.keys.clock = clock.time
    assert stat.S_IMODE(keys_file.stat().st_mode) == 0o600
    with trusting_session(platform.ca_cert_path) as session:
        old_token = platform.issue_access_token("alice")
        old_kid = jwt.get_unverified_header(old_token)["kid"]
        assert _verify(session, platform, old_token)["oid"]

        # The real command, in another process, as a person would run it next to a running stack.
        grace = 600.0
        done = subprocess.run(
            [sys.executable, "-m", "console.cli", "rotate-keys", "--grace", str(grace), "--json"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )  # inherits this test's OBO_CONSOLE_HOME
        assert done.returncode == 0, done.stderr
        report = json.loads(done.stdout)
        new_kid = report["current_kid"]
        assert new_kid != old_kid and [k["kid"] for k in report["retired"]] == [old_kid]
        assert stat.S_IMODE(keys_file.stat().st_mode) == 0o600

        # The running platform picked the new key up: JWKS has both, new tokens carry the new kid.
        published = [k["kid"] for k in session.get(platform.jwks_uri).json()["keys"]]
        assert published == [new_kid, old_kid]
        new_token = platform.issue_access_token("alice")
        assert jwt.get_unverified_header(new_token)["kid"] == new_kid
        assert _verify(session, platform, new_token)
        assert _verify(session, platform, old_token)  # grace period: the old token still validates
        assert _obo(session, platform, old_token).status_code == 200

        clock.set(time.time() + grace)  # the grace period is over (the rotation happened before now)
        assert [k["kid"] for k in session.get(platform.jwks_uri).json()["keys"]] == [new_kid]
        with pytest.raises(LookupError):
            _verify(session, platform, old_token)
        assert_entra_error(_obo(session, platform, old_token).json(), "invalid_grant", 50013)
        assert _verify(session, platform, new_token)


def test_rotate_keys_command_errors_are_clear(
    isolated_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["rotate-keys"]) == 1
    err = capsys.readouterr().err
    assert "No signing keys" in err and "obo-console server" in err
    assert main(["rotate-keys", "--grace", "-5"]) == 1
    assert "--grace must be 0 or more" in capsys.readouterr().err
    assert main(["--mode", "azure", "rotate-keys"]) == 1
    assert "Entra ID rotates" in capsys.readouterr().err


def test_in_process_rotation_and_default_grace(
    platform: IdentityPlatform, capsys: pytest.CaptureFixture[str]
) -> None:
    first = platform.keys.current().kid
    assert main(["rotate-keys"]) == 0  # default grace: 24 h
    out = capsys.readouterr().out
    second = platform.keys.current().kid
    assert second != first and second in out and first in out
    third = platform.rotate_keys(grace_seconds=0).kid  # grace 0: the previous key is gone at once
    assert [k["kid"] for k in platform.jwks()["keys"]] == [third, first]
