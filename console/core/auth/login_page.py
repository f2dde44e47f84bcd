"""Complete the local identity platform's browser sign-in page as a demo user, the way a browser does.

The page MSAL's interactive flow opens (``/authorize``) is a form: pick the user, Approve. When Conditional
Access or a ``claims`` request asks for multi-factor authentication, the next page is the number-matching step,
confirmed with ``mfa=approve``. The answer (``response_mode=form_post``) is a form the browser posts to the app's
loopback redirect URI: this module posts it to MSAL's listener, which then redeems the code with its PKCE verifier.
Local mode only: in Azure mode a person completes Entra's pages in their browser.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urljoin, urlsplit

import requests

from console.core.auth.device_page import page_text, read_form
from console.core.auth.errors import SignInError

MAX_PAGES = (
    4  # login, MFA step, the form_post answer (and one spare): more means the page is not the one known
)


def redirect_uri_of(auth_uri: str) -> str:
    """The loopback redirect URI MSAL put in the authorize request (where its listener waits)."""
    return dict(parse_qsl(urlsplit(auth_uri).query)).get("redirect_uri", "")


def complete_login_page(session: requests.Session, auth_uri: str, login: str) -> None:
    """Sign in as ``login`` on the page at ``auth_uri`` (MFA step included) and post the answer to the app's
    loopback listener. SignInError says what the page refused."""
    redirect_uri = redirect_uri_of(auth_uri)
    try:
        page = session.get(auth_uri, timeout=30, allow_redirects=False)
        for _ in range(MAX_PAGES):
            _refuse_errors(page, login)
            form = read_form(page.text)
            if form.action is None:
                break
            target = urljoin(page.url, form.action)
            if redirect_uri and target.startswith(redirect_uri):
                # The form_post answer: the browser's script would submit it to the app's listener.
                session.post(target, data=form.fields, timeout=30)
                return
            data = {**form.fields, "login": login, "action": "approve"}
            if "mfa-number" in page.text:
                data["mfa"] = "approve"  # the number-matching step: the demo person confirms the number
            page = session.post(target, data=data, timeout=30, allow_redirects=False)
    except requests.RequestException as exc:
        raise SignInError(
            f"Cannot complete the sign-in page: {type(exc).__name__}.",
            hint="Is the local stack still running?",
        ) from exc
    raise SignInError(
        f"The sign-in page did not answer with a code for {login!r}: {page_text(page.text, '')}",
        hint="Run `obo-console login --browser` again, or complete the page in a browser.",
    )


def _refuse_errors(page: requests.Response, login: str) -> None:
    if page.status_code >= 400:
        raise SignInError(
            f"The sign-in page refused the sign-in as {login!r} (HTTP {page.status_code}): "
            f"{page_text(page.text, '')}",
            hint="Check the user name (alice, bob, carol, dave) and run login again.",
        )
    if page.is_redirect:  # a query-mode answer: this console asks for form_post, so the page is not ours
        raise SignInError(
            "The sign-in page redirected instead of answering with a form.",
            hint="The identity platform does not support response_mode=form_post.",
        )
