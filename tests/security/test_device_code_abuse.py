"""Hostile use of the identity platform's device-code endpoints: a flood of /devicecode, cross-site form POSTs to
the device-login page, and guessing user codes. Real platform over HTTPS, real MSAL, real loopback sockets (the
guessers and the real user connect from different loopback addresses, 127.0.0.x)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from html import unescape
from typing import Any

import jwt
import msal
import pytest
import requests
from requests.adapters import HTTPAdapter

from mcp_server.localcloud.ca import trusting_session
from mcp_server.localcloud.identity.device_codes import MAX_CODES_PER_CLIENT, DeviceAuthorization
from mcp_server.localcloud.identity.page_guard import WRONG_CODE_BURST, WRONG_CODE_REFILL_SECONDS
from mcp_server.localcloud.identity.platform import IdentityPlatform
from mcp_server.localcloud.identity.scopes import parse_scope
from mcp_server.localcloud.tenant import AppRegistration, Tenant
from tests.identity.helpers import assert_entra_error, device_flow_sign_in, public_app

CAP = 25  # per-client device codes on the test platforms (the default, 1000, is checked separately)
BURST = 4  # wrong codes per address on the test platforms
TOOL_CLIENT_ID = "5d0c6f0e-7a3b-4c1d-9e2f-00000000a001"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
CROSS_SITE_TEXT = "This form was sent from another site"


@pytest.fixture(scope="module")
def two_app_tenant(demo_tenant: Tenant) -> Tenant:
    """The demo tenant plus a second public client with the device flow ("another tool"): the flooder."""
    tool = AppRegistration(
        key="tool",
        name="Another tool",
        client_id=TOOL_CLIENT_ID,
        service_principal_id="5d0c6f0e-7a3b-4c1d-9e2f-00000000b001",
        public_client=True,
        allow_device_code_flow=True,
    )
    return dataclasses.replace(demo_tenant, apps=(*demo_tenant.apps, tool))


@pytest.fixture
def platform(tmp_path_factory: pytest.TempPathFactory, two_app_tenant: Tenant) -> Iterator[IdentityPlatform]:
    """A fresh platform per test (floods and throttles must not leak), with a small cap and a burst of 4 wrong
    codes that refills only after an hour, so no refill can happen while a test runs."""
    with IdentityPlatform(
        two_app_tenant,
        home=tmp_path_factory.mktemp("idp-abuse"),
        device_codes_per_client=CAP,
        wrong_code_burst=BURST,
        wrong_code_refill_seconds=3600,
    ) as idp:
        yield idp


class _FromAddress(HTTPAdapter):
    """Connect from a given loopback address (Linux routes all of 127.0.0.0/8 to lo)."""

    def __init__(self, address: str) -> None:
        self._address = address
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["source_address"] = (self._address, 0)
        super().init_poolmanager(*args, **kwargs)


@pytest.fixture
def sessions(platform: IdentityPlatform) -> Iterator[dict[str, requests.Session]]:
    """CA-trusting sessions connecting from 127.0.0.1 (default), 127.0.0.2 and 127.0.0.3."""
    made: dict[str, requests.Session] = {}
    for address in ("127.0.0.1", "127.0.0.2", "127.0.0.3"):
        session = trusting_session(platform.ca_cert_path)
        session.mount("https://", _FromAddress(address))
        made[address] = session
    yield made
    for session in made.values():
        session.close()


def new_code(session: requests.Session, platform: IdentityPlatform, client_id: str) -> requests.Response:
    return session.post(platform.device_endpoint, data={"client_id": client_id, "scope": platform.api_scope})


def post_page(
    session: requests.Session,
    platform: IdentityPlatform,
    user_code: str,
    login: str = "alice",
    action: str = "approve",
    headers: dict[str, str] | None = None,
) -> Page:
    answer = session.post(
        platform.verification_uri,
        data={"user_code": user_code, "login": login, "action": action},
        headers=headers or {},
    )
    return Page(answer.status_code, unescape(answer.text), answer.headers)


@dataclasses.dataclass
class Page:
    status_code: int
    text: str  # HTML with entities decoded, so messages read as the person sees them
    headers: Any


def redeem(session: requests.Session, platform: IdentityPlatform, device_code: str) -> requests.Response:
    return session.post(
        platform.token_endpoint,
        data={
            "grant_type": DEVICE_GRANT,
            "client_id": platform.console_client_id,
            "device_code": device_code,
        },
    )


def status_of(platform: IdentityPlatform, user_code: str) -> str:
    return platform.devices.lookup(user_code).status  # raises PageError unless still pending


def oid_of(access_token: str) -> str:
    return str(jwt.decode(access_token, options={"verify_signature": False})["oid"])


def own_origin(platform: IdentityPlatform) -> str:
    return platform.base_url


# -- the /devicecode flood -------------------------------------------------------------------------------------


def flood(session: requests.Session, platform: IdentityPlatform, client_id: str) -> list[dict[str, Any]]:
    """Request codes until refused; the codes given."""
    given = []
    for _ in range(CAP + 1):
        answer = new_code(session, platform, client_id)
        if answer.status_code != 200:
            break
        given.append(answer.json())
    return given


def test_flooding_devicecode_past_the_per_client_cap_gets_429_with_retry_after_in_entras_envelope(
    platform: IdentityPlatform, sessions: dict[str, requests.Session]
) -> None:
    session = sessions["127.0.0.1"]
    given = flood(session, platform, TOOL_CLIENT_ID)
    assert len(given) == CAP and len({g["user_code"] for g in given}) == CAP

    refused = new_code(session, platform, TOOL_CLIENT_ID)
    assert refused.status_code == 429
    retry_after = int(refused.headers["Retry-After"])
    assert 1 <= retry_after <= 900  # until the client's oldest code expires (lifetime 900 s)
    body = refused.json()
    assert_entra_error(body, "temporarily_unavailable", 50196)
    assert body["error_description"].startswith(
        "AADSTS50196: The server terminated an operation because it encountered a loop while processing a request. "
        f"Too many device codes: this application requested {CAP} in the last 900 seconds"
    )
    assert f"Retry after {retry_after} seconds." in body["error_description"]
    assert refused.headers["cache-control"] == "no-store, no-cache"
    assert platform.devices.issued_count(TOOL_CLIENT_ID) == CAP  # the refused request created nothing

    # MSAL sees the same envelope (and, honouring Retry-After, does not ask again meanwhile).
    tool = msal.PublicClientApplication(
        TOOL_CLIENT_ID, authority=platform.authority, instance_discovery=False, http_client=session
    )
    flow = tool.initiate_device_flow(scopes=[platform.api_scope])
    assert "user_code" not in flow
    assert flow["error"] == "temporarily_unavailable" and flow["error_codes"] == [50196]


def test_a_flood_leaves_other_clients_and_a_real_msal_sign_in_working_while_its_codes_are_live(
    platform: IdentityPlatform, sessions: dict[str, requests.Session], two_app_tenant: Tenant
) -> None:
    session = sessions["127.0.0.1"]
    given = flood(session, platform, TOOL_CLIENT_ID)
    assert len(given) == CAP and new_code(session, platform, TOOL_CLIENT_ID).status_code == 429

    # Another client still gets codes ...
    other = new_code(session, platform, platform.console_client_id)
    assert other.status_code == 200 and len(other.json()["user_code"]) == 9
    # ... and a real MSAL device-code sign-in completes, with every flood code still live and pending.
    result = device_flow_sign_in(platform, public_app(platform, session), "alice")
    alice = two_app_tenant.user_by_login("alice")
    assert alice is not None and "access_token" in result, result
    assert oid_of(result["access_token"]) == alice.oid
    assert platform.devices.issued_count(TOOL_CLIENT_ID) == CAP
    assert {status_of(platform, g["user_code"]) for g in given} == {"pending"}


def test_the_default_limits_are_the_documented_ones(identity_platform: IdentityPlatform) -> None:
    assert (MAX_CODES_PER_CLIENT, WRONG_CODE_BURST, WRONG_CODE_REFILL_SECONDS) == (1000, 10, 6.0)
    assert identity_platform.devices.max_per_client == 1000
    assert (identity_platform.wrong_codes.burst, identity_platform.wrong_codes.refill_seconds) == (10, 6.0)


# -- lookups by key, not by scanning ---------------------------------------------------------------------------

_touched: set[str] = set()


class _Watched(DeviceAuthorization):
    """A stored code that records every read of its fields."""

    def __getattribute__(self, name: str) -> Any:
        if not name.startswith("__"):
            _touched.add(object.__getattribute__(self, "user_code"))
        return object.__getattribute__(self, name)


def test_with_5000_live_codes_a_whole_sign_in_touches_none_of_them(
    tmp_path_factory: pytest.TempPathFactory, two_app_tenant: Tenant
) -> None:
    with (
        IdentityPlatform(
            two_app_tenant, home=tmp_path_factory.mktemp("idp-5000"), device_codes_per_client=5000
        ) as idp,
        trusting_session(idp.ca_cert_path) as session,
    ):
        scope = parse_scope(two_app_tenant, idp.api_scope)
        live = [idp.devices.create(TOOL_CLIENT_ID, scope) for _ in range(5000)]
        for auth in live:
            auth.__class__ = _Watched
        _touched.clear()

        # create (/devicecode), look up + approve (the page), redeem (/token): all by key.
        result = device_flow_sign_in(idp, public_app(idp, session), "bob")
        assert "access_token" in result, result
        assert _touched == set()

        # The watch works: naming one code touches exactly that one.
        assert idp.devices.lookup(live[123].user_code).status == "pending"
        assert _touched == {live[123].user_code}
        assert idp.devices.count() == 5001 and idp.devices.issued_count(TOOL_CLIENT_ID) == 5000


# -- cross-site form POSTs to the device-login page ---------------------------------------------------------------

FOREIGN_ORIGINS = [
    "https://evil.example",
    "null",  # sandboxed frames and opaque origins
    "http://127.0.0.1:{port}",  # same host and port, other scheme
    "https://127.0.0.1:1",  # another service on loopback: same site, other origin
    "https://localhost.evil.example:{port}",
]


@pytest.mark.parametrize("origin", FOREIGN_ORIGINS)
def test_a_post_from_another_origin_neither_approves_nor_declines_and_the_code_stays_pending(
    platform: IdentityPlatform, sessions: dict[str, requests.Session], origin: str
) -> None:
    session = sessions["127.0.0.1"]
    code = new_code(session, platform, platform.console_client_id).json()
    origin = origin.format(port=platform.port)
    for action in ("approve", "decline"):
        refused = post_page(session, platform, code["user_code"], action=action, headers={"Origin": origin})
        assert refused.status_code == 403
        assert (
            f"{CROSS_SITE_TEXT} (Origin: {origin}), not from this sign-in page. Nothing was approved or "
            "declined." in refused.text
        )
        assert code["user_code"] not in refused.text  # the refusal does not echo what the other site sent
        assert status_of(platform, code["user_code"]) == "pending"
    pending = redeem(session, platform, code["device_code"])
    assert_entra_error(pending.json(), "authorization_pending", 70016)


@pytest.mark.parametrize("fetch_site", ["cross-site", "same-site", "Cross-Site"])
def test_a_post_marked_cross_site_or_same_site_by_the_browser_is_refused(
    platform: IdentityPlatform, sessions: dict[str, requests.Session], fetch_site: str
) -> None:
    session = sessions["127.0.0.1"]
    code = new_code(session, platform, platform.console_client_id).json()
    refused = post_page(session, platform, code["user_code"], headers={"Sec-Fetch-Site": fetch_site})
    assert refused.status_code == 403
    assert f"{CROSS_SITE_TEXT} (Sec-Fetch-Site: {fetch_site})" in refused.text
    assert status_of(platform, code["user_code"]) == "pending"
    # Our own origin with the browser's cross-site mark is still refused: either header naming another site is.
    both = post_page(
        session,
        platform,
        code["user_code"],
        headers={"Origin": own_origin(platform), "Sec-Fetch-Site": fetch_site},
    )
    assert both.status_code == 403 and status_of(platform, code["user_code"]) == "pending"


@pytest.mark.parametrize(
    "headers",
    [
        {},  # requests, curl, the console's `login --as`: no browser headers, the documented form contract
        {"Origin": "{own}", "Sec-Fetch-Site": "same-origin"},  # a browser on the page itself
        {
            "Origin": "https://localhost:{port}",
            "Sec-Fetch-Site": "same-origin",
        },  # the page opened as localhost
        {"Sec-Fetch-Site": "none"},  # user-initiated (no page involved)
    ],
)
def test_same_origin_and_header_less_posts_approve(
    platform: IdentityPlatform,
    sessions: dict[str, requests.Session],
    headers: dict[str, str],
    two_app_tenant: Tenant,
) -> None:
    session = sessions["127.0.0.1"]
    code = new_code(session, platform, platform.console_client_id).json()
    filled = {k: v.format(own=own_origin(platform), port=platform.port) for k, v in headers.items()}
    approved = post_page(session, platform, code["user_code"], headers=filled)
    assert approved.status_code == 200 and "You're signed in" in approved.text
    token = redeem(session, platform, code["device_code"])
    alice = two_app_tenant.user_by_login("alice")
    assert (
        token.status_code == 200 and alice is not None and oid_of(token.json()["access_token"]) == alice.oid
    )


# -- guessing user codes ------------------------------------------------------------------------------------------


def test_guessing_codes_is_throttled_per_address_and_the_real_user_elsewhere_is_not(
    platform: IdentityPlatform, sessions: dict[str, requests.Session], two_app_tenant: Tenant
) -> None:
    guesser, user = sessions["127.0.0.2"], sessions["127.0.0.3"]
    code = new_code(user, platform, platform.console_client_id).json()
    for guess in range(BURST):
        wrong = post_page(guesser, platform, f"GUESS{guess:04d}")
        assert wrong.status_code == 400 and "wasn't recognized" in wrong.text and "AADSTS70018" in wrong.text

    throttled = post_page(guesser, platform, "GUESS9999")
    assert throttled.status_code == 429
    assert 3590 <= int(throttled.headers["Retry-After"]) <= 3600  # one guess per hour on this platform
    assert "Too many unknown codes were entered from your address. Wait " in throttled.text
    # Even the right code is refused from that address now: a guesser learns nothing from the answer.
    right_but_throttled = post_page(guesser, platform, code["user_code"])
    assert right_but_throttled.status_code == 429 and status_of(platform, code["user_code"]) == "pending"

    # The real user, typing the code from another address right afterwards, signs in.
    approved = post_page(user, platform, code["user_code"], login="carol")
    assert approved.status_code == 200 and "Carol Example" in approved.text
    token = redeem(user, platform, code["device_code"])
    carol = two_app_tenant.user_by_login("carol")
    assert carol is not None and oid_of(token.json()["access_token"]) == carol.oid


def test_a_guesser_cannot_escape_the_throttle_with_x_forwarded_for(
    platform: IdentityPlatform, sessions: dict[str, requests.Session]
) -> None:
    guesser = sessions["127.0.0.1"]  # the address uvicorn would trust proxy headers from, by default
    for guess in range(BURST):
        assert post_page(guesser, platform, f"GUESS{guess:04d}").status_code == 400
    spoofed = [
        post_page(guesser, platform, "GUESS9999", headers={"X-Forwarded-For": f"10.0.0.{n}"})
        for n in range(3)
    ]
    assert [s.status_code for s in spoofed] == [429, 429, 429]


def test_typos_and_other_page_errors_within_the_burst_do_not_lock_anyone_out(
    platform: IdentityPlatform, sessions: dict[str, requests.Session]
) -> None:
    session = sessions["127.0.0.2"]
    code = new_code(session, platform, platform.console_client_id).json()
    for _ in range(BURST - 1):  # typos: one short of the burst
        assert post_page(session, platform, "TYPOTYPOT").status_code == 400
    for _ in range(BURST + 1):  # unknown user names are not code guesses
        assert (
            "no demo user 'mallory'" in post_page(session, platform, code["user_code"], login="mallory").text
        )
    assert post_page(session, platform, code["user_code"]).status_code == 200
