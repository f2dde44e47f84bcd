"""Benchmark of the console's sign-in, measured in one run against the local identity platform (real HTTPS).

    .venv/bin/python -m benchmarks.bench_signin [--repeat 10]

Compares, as ratios against a full device-code flow (initiate, device-login form POST, token redemption, cache
write to the keyring store): a silent sign-in in a running console (warm AuthManager: cache check in the keyring
and MSAL's cache lookup), and a silent sign-in as a fresh process does it (new AuthManager: MSAL discovery,
the token cache reassembled from keyring chunks, cache lookup). The keyring is keyrings.alt's file store in a
temporary data dir, and a 2,560-byte-per-entry in-memory keyring to show the cost of chunking.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from keyring.backend import KeyringBackend
from keyring.errors import PasswordDeleteError

from benchmarks._common import timed


class LimitedKeyring(KeyringBackend):
    """In memory, refusing values over 2,560 bytes (UTF-16), like Windows Credential Manager."""

    priority = 1  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.values: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.values.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        if len(password.encode("utf-16-le")) > 2560:
            raise ValueError("value too large for one entry")
        self.values[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        if self.values.pop((service, username), None) is None:
            raise PasswordDeleteError(username)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=10, help="samples per measurement (median reported)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as home:
        os.environ["OBO_CONSOLE_HOME"] = home
        os.environ["OBO_CONSOLE_MODE"] = "local"
        os.environ["OBO_CONSOLE_KEYRING_BACKEND"] = "file"
        from console.core.auth.manager import AuthManager
        from mcp_server.localcloud.identity.platform import IdentityPlatform
        from mcp_server.localcloud.tenant import load_demo_tenant
        from mcp_server.stack import demo_users
        from mcp_server.stack_state import StackState, write_state

        tenant = load_demo_tenant()
        with IdentityPlatform(tenant, home=Path(home) / "localcloud") as idp:
            write_state(
                StackState(
                    authority=idp.authority,
                    tenant_id=tenant.tenant_id,
                    console_client_id=idp.console_client_id,
                    api_client_id=idp.api_client_id,
                    api_scope=idp.api_scope,
                    ca_cert=str(idp.ca_cert_path),
                    users=demo_users(tenant),
                    pid=os.getpid(),
                )
            )
            print(f"sign-in against {idp.authority} (median of {args.repeat})")
            for label, backend in (("file keyring", None), ("2,560-byte chunked keyring", LimitedKeyring())):
                manager = AuthManager.from_settings(backend=backend)
                full = timed(lambda manager=manager: manager.sign_in_as("alice"), args.repeat, warm_up=True)
                manager.sign_in_as("bob")
                manager.sign_in_as("carol")  # a realistic cache: three accounts
                alice = manager.find_account("alice")

                def warm(manager: AuthManager = manager, alice=alice) -> None:
                    assert manager.acquire_token(alice).source == "cache"

                def fresh(backend: KeyringBackend | None = backend, alice=alice) -> None:
                    with AuthManager.from_settings(backend=backend) as new:
                        assert new.acquire_token(alice).source == "cache"

                silent_warm = timed(warm, args.repeat, warm_up=True)
                silent_fresh = timed(fresh, args.repeat, warm_up=True)
                print(f"  [{label}]")
                print(f"    full device-code flow (form POST)        {full * 1000:8.1f} ms")
                print(
                    f"    silent, running console                  {silent_warm * 1000:8.2f} ms"
                    f"   ratio full/silent {full / silent_warm:7.1f}x"
                )
                print(
                    f"    silent, fresh process (discovery+load)   {silent_fresh * 1000:8.1f} ms"
                    f"   ratio full/silent {full / silent_fresh:7.1f}x"
                )
                manager.tokens.sign_out_all()
                manager.close()


if __name__ == "__main__":
    main()
