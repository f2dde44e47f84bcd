"""Benchmark of the local identity platform, measured in one run over real HTTPS on loopback.

    .venv/bin/python -m benchmarks.bench_identity [--seconds 3]

Prints tokens issued per second (refresh-token grant and OBO, keep-alive connection) against the same
connection's rate for a request that signs nothing (the JWKS), and the cost of a silent sign-in from MSAL's cache
against a full device-code flow (approved through the device-login form POST), as ratios.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import msal

from benchmarks._common import timed
from mcp_server.localcloud.ca import trusting_session
from mcp_server.localcloud.identity.device_page import complete_device_code
from mcp_server.localcloud.identity.platform import IdentityPlatform
from mcp_server.localcloud.tenant import load_demo_tenant


def rate(label: str, call: Callable[[], None], seconds: float) -> float:
    call()  # warm up (connection, TLS session)
    count, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        call()
        count += 1
    per_second = count / elapsed
    print(f"  {label:<44} {per_second:8.1f} /s  ({count} in {elapsed:.2f} s)")
    return per_second


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=3.0, help="duration of each throughput measurement")
    parser.add_argument("--flows", type=int, default=10, help="device flows to time")
    args = parser.parse_args()

    tenant = load_demo_tenant()
    with (
        tempfile.TemporaryDirectory() as home,
        IdentityPlatform(tenant, home=Path(home)) as idp,
        trusting_session(idp.ca_cert_path) as session,
    ):
        token_cache = msal.SerializableTokenCache()
        app = msal.PublicClientApplication(
            idp.console_client_id,
            authority=idp.authority,
            instance_discovery=False,
            http_client=session,
            token_cache=token_cache,
        )
        scopes = [idp.api_scope]

        def device_flow() -> dict:
            # Approved before the first poll, so this is the protocol's cost, not a person's typing time.
            flow = app.initiate_device_flow(scopes=scopes)
            complete_device_code(flow["verification_uri"], flow["user_code"], "alice", session=session)
            result = app.acquire_token_by_device_flow(flow)
            assert "access_token" in result, result.get("error_description")
            return result

        first = device_flow()
        refresh_token = first["refresh_token"]
        user_token = first["access_token"]
        secret = tenant.api_app.client_secret.get_secret_value()  # type: ignore[union-attr]

        def plain_request() -> None:
            session.get(idp.jwks_uri).raise_for_status()

        def refresh() -> None:
            session.post(
                idp.token_endpoint,
                data={
                    "grant_type": "refresh_token",
                    "client_id": idp.console_client_id,
                    "client_info": "1",
                    "refresh_token": refresh_token,
                    "scope": f"{idp.api_scope} offline_access openid profile",
                },
            ).raise_for_status()

        def obo() -> None:
            session.post(
                idp.token_endpoint,
                data={
                    "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
                    "client_id": idp.api_client_id,
                    "client_secret": secret,
                    "assertion": user_token,
                    "scope": "https://search.azure.com/.default",
                    "requested_token_use": "on_behalf_of",
                },
            ).raise_for_status()

        print(f"Local identity platform at {idp.base_url} (HTTPS, keep-alive, one client thread)")
        baseline = rate("JWKS GET (baseline: no signing)", plain_request, args.seconds)
        refresh_rate = rate("refresh-token grant (AT + RT + id_token)", refresh, args.seconds)
        obo_rate = rate("OBO grant (search token)", obo, args.seconds)
        mint_rate = rate(
            "in-process signing only (no HTTP)",
            lambda: idp.issue_access_token("alice") and None,
            args.seconds,
        )

        account = app.get_accounts()[0]

        def silent() -> None:
            result = app.acquire_token_silent(scopes, account=account)
            assert result is not None and result["token_source"] == "cache"

        cache_state = token_cache.serialize()

        def silent_fresh_app() -> None:
            # What a new console process does: load the cache, build the app (discovery), then silent.
            cache = msal.SerializableTokenCache()
            cache.deserialize(cache_state)
            fresh = msal.PublicClientApplication(
                idp.console_client_id,
                authority=idp.authority,
                instance_discovery=False,
                http_client=session,
                token_cache=cache,
            )
            result = fresh.acquire_token_silent(scopes, account=fresh.get_accounts()[0])
            assert result is not None and result["token_source"] == "cache"

        flow_s = timed(device_flow, args.flows)
        silent_s = timed(silent, 200)
        fresh_s = timed(silent_fresh_app, 30)

        print("\nThroughput, as ratios to the baseline request on the same connection:")
        print(
            f"  refresh grant: {refresh_rate:.1f} tokens/s = {refresh_rate / baseline:.2f}x the baseline rate"
        )
        print(f"  OBO grant:     {obo_rate:.1f} tokens/s = {obo_rate / baseline:.2f}x the baseline rate")
        print(
            f"  HTTP share of an OBO grant: {1 - obo_rate / mint_rate:.0%} (signing alone: {mint_rate:.0f}/s)"
        )
        print("\nSign-in cost (medians):")
        print(f"  full device flow (approved via form POST) {flow_s * 1000:8.2f} ms")
        print(f"  silent, MSAL cache hit (same app)         {silent_s * 1000:8.3f} ms")
        print(
            f"  silent, fresh app from serialized cache   {fresh_s * 1000:8.2f} ms (includes OIDC discovery)"
        )
        print(f"  device flow / silent (same app)          = {flow_s / silent_s:8.0f}x")
        print(f"  device flow / silent (fresh app)         = {flow_s / fresh_s:8.1f}x")
        print("  (a real device flow also waits >= 1 polling interval plus the person's typing time)")


if __name__ == "__main__":
    main()
