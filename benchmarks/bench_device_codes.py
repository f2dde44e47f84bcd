"""The device-authorization endpoint under a flood, measured in one run over real HTTPS on loopback.

    .venv/bin/python -m benchmarks.bench_device_codes [--live 10000] [--flooders 8] [--samples 200] [--flows 10]

The flood: ``--flooders`` public clients holding ``--live`` device codes in all (filled in-process by default,
or with ``--fill http`` by the flooders over HTTPS; the per-client cap is raised to each one's share when that
exceeds the default 1,000, so the store really reaches that size), then separate flooder processes that keep
requesting codes (answered 429 once at the cap). Prints the median ``/devicecode`` latency and the median full
device-code sign-in (MSAL, approved via the form POST) of a real client with no live codes (baseline), with the
flood's codes live, and while the flooders keep hammering (they get 429s), as ratios to the baseline.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import math
import multiprocessing as mp
import tempfile
import time
import uuid
from collections.abc import Callable
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any

import msal
import requests

from benchmarks._common import timed
from mcp_server.localcloud.ca import trusting_session
from mcp_server.localcloud.identity.device_codes import MAX_CODES_PER_CLIENT
from mcp_server.localcloud.identity.device_page import complete_device_code
from mcp_server.localcloud.identity.platform import IdentityPlatform
from mcp_server.localcloud.identity.scopes import parse_scope
from mcp_server.localcloud.tenant import AppRegistration, Tenant, load_demo_tenant

PHASES = ("baseline", "loaded", "flooding")


def with_clients(tenant: Tenant, flooders: int) -> Tenant:
    """The demo tenant plus public clients allowed the device flow: ``flooders`` flooders and one measuring client
    per phase (so the measurement's own codes never reach a client's cap)."""
    keys = [f"flooder{i}" for i in range(flooders)] + [f"meter-{phase}" for phase in PHASES]
    apps = tuple(
        AppRegistration(
            key=key,
            name=key,
            client_id=str(uuid.uuid4()),
            service_principal_id=str(uuid.uuid4()),
            public_client=True,
            allow_device_code_flow=True,
        )
        for key in keys
    )
    return dataclasses.replace(tenant, apps=(*tenant.apps, *apps))


def flood(
    endpoint: str,
    ca: str,
    client_id: str,
    scope: str,
    quota: int | None,
    stop: Event,
    ready: Any,
    results: Any,
) -> None:
    """One flooder: POST /devicecode until ``quota`` codes, a refusal (when filling), or ``stop``."""
    created = refused = 0
    with requests.Session() as session:
        session.verify, session.trust_env = ca, False
        while not stop.is_set() and (quota is None or created < quota):
            answer = session.post(endpoint, data={"client_id": client_id, "scope": scope})
            if created + refused == 0:
                ready.put(client_id)  # connected and flooding
            if answer.status_code == 200:
                created += 1
            else:
                refused += 1
                if quota is not None:
                    break
    results.put((created, refused))


def run_flooders(
    idp: IdentityPlatform, clients: list[str], quota: int | None, measure: Any = None
) -> tuple[int, int, float]:
    """Start one process per client; with ``measure``, run it while they flood, then stop them.
    Returns (codes created, requests refused, seconds)."""
    ctx = mp.get_context("spawn")
    stop, ready, results = ctx.Event(), ctx.Queue(), ctx.Queue()
    procs = [
        ctx.Process(
            target=flood,
            args=(idp.device_endpoint, str(idp.ca_cert_path), c, idp.api_scope, quota, stop, ready, results),
        )
        for c in clients
    ]
    for proc in procs:
        proc.start()
    for _ in procs:
        ready.get(timeout=120)  # every flooder started (imports, TLS) and flooding: time from here
    start = time.perf_counter()
    if measure is not None:
        try:
            measure()
        finally:
            stop.set()
    counts = [results.get(timeout=600) for _ in procs]
    for proc in procs:
        proc.join(timeout=30)
    return sum(c for c, _ in counts), sum(r for _, r in counts), time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--live", type=int, default=10_000, help="device codes the flood should hold")
    parser.add_argument("--flooders", type=int, default=8, help="flooding processes (one client each)")
    parser.add_argument("--samples", type=int, default=200, help="/devicecode requests timed per phase")
    parser.add_argument("--flows", type=int, default=10, help="full device-code sign-ins timed per phase")
    parser.add_argument(
        "--fill",
        choices=("store", "http"),
        default="store",
        help="fill the flood's codes in-process (fast, default) or by the flooders over HTTPS",
    )
    args = parser.parse_args()

    if not 0 < args.samples < MAX_CODES_PER_CLIENT:
        parser.error(f"--samples must be between 1 and {MAX_CODES_PER_CLIENT - 1} (one client's codes)")
    tenant = with_clients(load_demo_tenant(), args.flooders)
    flooders = [a.client_id for a in tenant.apps if a.key.startswith("flooder")]
    share = math.ceil(args.live / args.flooders)
    options: dict[str, Any] = {}
    if "device_codes_per_client" in inspect.signature(IdentityPlatform).parameters:
        # Raised from the default (1,000) when needed so the flood can hold --live codes in all.
        options["device_codes_per_client"] = max(share, MAX_CODES_PER_CLIENT)
    with (
        tempfile.TemporaryDirectory() as home,
        IdentityPlatform(tenant, home=Path(home), **options) as idp,
        trusting_session(idp.ca_cert_path) as session,
    ):
        app = msal.PublicClientApplication(
            idp.console_client_id, authority=idp.authority, instance_discovery=False, http_client=session
        )

        def creating(phase: str) -> Callable[[], None]:
            client_id = tenant.app(f"meter-{phase}").client_id

            def create() -> None:
                session.post(
                    idp.device_endpoint, data={"client_id": client_id, "scope": idp.api_scope}
                ).raise_for_status()

            return create

        def sign_in() -> None:
            flow = app.initiate_device_flow(scopes=[idp.api_scope])
            assert "user_code" in flow, flow.get("error_description")
            complete_device_code(flow["verification_uri"], flow["user_code"], "alice", session=session)
            assert "access_token" in app.acquire_token_by_device_flow(flow)

        print(
            f"Local identity platform at {idp.base_url}; {args.flooders} flooding processes, one client each"
        )
        base_create = timed(creating("baseline"), args.samples, warm_up=True)
        base_flow = timed(sign_in, args.flows, warm_up=True)

        if args.fill == "http":
            created, refused, seconds = run_flooders(idp, flooders, share)
            print(
                f"  fill over HTTP: {created} codes in {seconds:.1f} s ({created / seconds:.0f}/s), {refused} refused"
            )
        else:  # the same store state, without waiting for {--live} HTTPS requests
            scope = parse_scope(tenant, idp.api_scope)
            for client_id in flooders:
                for _ in range(share):
                    idp.devices.create(client_id, scope)
        live = idp.devices.count() if hasattr(idp.devices, "count") else len(idp.devices._by_device)
        print(f"  {live} codes in the store ({args.fill} fill)")
        loaded_create = timed(creating("loaded"), args.samples)
        loaded_flow = timed(sign_in, args.flows)

        during: dict[str, float] = {}

        def measure_during() -> None:
            during["create"] = timed(creating("flooding"), args.samples)
            during["flow"] = timed(sign_in, args.flows)

        more, refused_during, seconds = run_flooders(idp, flooders, None, measure_during)
        print(
            f"  active flood: {more + refused_during} flood requests in {seconds:.1f} s, {more} created, "
            f"{refused_during} refused (429)"
        )

    print("\nMedian latency of a real client, as ratios to the baseline (no live codes):")
    rows = [
        ("no live codes (baseline)", base_create, base_flow),
        (f"{live} live codes", loaded_create, loaded_flow),
        (f"{live}+ live codes, flood running", during["create"], during["flow"]),
    ]
    print(f"  {'':<38} {'/devicecode':>12} {'ratio':>7} {'sign-in':>10} {'ratio':>7}")
    for label, create_s, flow_s in rows:
        print(
            f"  {label:<38} {create_s * 1000:9.2f} ms {create_s / base_create:6.2f}x "
            f"{flow_s * 1000:7.1f} ms {flow_s / base_flow:6.2f}x"
        )
    print(
        "  (flooders and this client share the machine's cores: the 'flood running' row includes that contention)"
    )


if __name__ == "__main__":
    main()
