"""The MSAL public client for the console app: the same code against the local identity platform and Entra ID.

Local mode trusts the local CA explicitly (``verify=<CA>``, ``trust_env=False``: this machine's
REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE would otherwise override ``verify``). Azure mode uses requests' defaults and
never loads the local CA.
"""

from __future__ import annotations

import msal
import requests

from console.core.auth.errors import SignInError
from console.core.endpoints import Endpoints

HTTP_TIMEOUT = 30.0


def http_session(endpoints: Endpoints) -> requests.Session:
    session = requests.Session()
    if endpoints.mode == "local" and endpoints.ca_cert is not None:
        session.verify = str(endpoints.ca_cert)
        session.trust_env = False
    return session


def build_public_client(
    endpoints: Endpoints, cache: msal.TokenCache | None, session: requests.Session | None = None
) -> msal.PublicClientApplication:
    """A PublicClientApplication for the console app (discovery runs here: it makes a network call)."""
    try:
        return msal.PublicClientApplication(
            endpoints.console_client_id,
            authority=endpoints.authority,
            instance_discovery=False,  # no login.microsoftonline.com round trip for the local host; same for Entra
            http_client=session or http_session(endpoints),
            token_cache=cache,
            timeout=HTTP_TIMEOUT,
        )
    except (requests.RequestException, ValueError) as exc:
        raise SignInError(
            f"Cannot reach the identity platform at {endpoints.authority}: {type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''}",
            hint="Is the local stack running (`obo-console server`)? In Azure mode check OBO_CONSOLE_TENANT_ID "
            "and your network.",
        ) from exc
