"""Complete the local identity platform's device-code page as a demo user, the way a browser does.

GET the page, read its sign-in form (action and hidden fields), fill in ``user_code``, ``login`` and
``action``, and POST it. When the page answers with its second step (multi-factor authentication, number
matching: a Conditional Access policy or a ``claims`` challenge asks for it), ``mfa="if_asked"`` confirms the
number shown and posts that form with ``mfa=approve``. Local mode only: in Azure mode a person completes
Entra's page in a real browser.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html import unescape
from html.parser import HTMLParser
from typing import Literal
from urllib.parse import urljoin

import requests
from pydantic import SecretStr

from console.core.auth.errors import SignInError

_TAGS = re.compile(r"<[^>]+>")
_NOISE = re.compile(r"<(style|script|head)\b.*?</\1>", re.S | re.I)
_MFA_NUMBER = re.compile(r"id=mfa-number[^>]*>\s*(\d{1,3})\s*<")
_ALERT = re.compile(r"<(div|p)[^>]*(?:class=[\"']?error|role=[\"']?alert)[^>]*>(.*?)</\1>", re.S | re.I)


MfaChoice = bool | Literal["if_asked"]  # True: always send mfa=approve; False: never; "if_asked": when asked


@dataclass
class PageForm:
    """The first POST form of a page: where it posts and its hidden fields."""

    action: str | None = None
    fields: dict[str, str] = field(default_factory=dict)


class _FormReader(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.form = PageForm()
        self._in_form = False
        self._done = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag == "form" and not self._done and values.get("method", "get").lower() == "post":
            self._in_form = True
            self.form.action = values.get("action", "")
        elif (
            tag == "input"
            and self._in_form
            and values.get("type", "").lower() == "hidden"
            and values.get("name")
        ):
            self.form.fields[values["name"]] = values.get("value", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "form" and self._in_form:
            self._in_form, self._done = False, True


def read_form(html: str) -> PageForm:
    reader = _FormReader()
    reader.feed(html)
    return reader.form


def page_text(html: str, user_code: str) -> str:
    """What the page says went wrong (its alert, else its text), with the user code masked."""
    alert = _ALERT.search(html)
    text = " ".join(unescape(_TAGS.sub(" ", alert.group(2) if alert else _NOISE.sub(" ", html))).split())
    return (text.replace(user_code, "********") if user_code else text)[:300]


def complete_device_page(
    session: requests.Session,
    verification_uri: str,
    user_code: SecretStr,
    login: str,
    action: str = "approve",
    *,
    mfa: MfaChoice = False,
) -> int | None:
    """Approve (or decline) the device-code flow identified by ``user_code`` as ``login``. ``mfa=True`` sends
    ``mfa=approve`` with the first post; ``"if_asked"`` completes the page's second step only when it shows one.
    Returns the number confirmed on that step (None when the page asked for none). SignInError when the page
    refuses, or asks for the second step and ``mfa`` is False."""
    code = user_code.get_secret_value()
    try:
        page = session.get(verification_uri, timeout=30)
        data, target = _filled(page.text, verification_uri)
        data.update({"user_code": code, "login": login, "action": action})
        if mfa is True:
            data["mfa"] = "approve"
        answer = session.post(target, data=data, timeout=30)
        _check(answer, login, code)
        number = _MFA_NUMBER.search(answer.text) if answer.status_code < 400 else None
        if number is None:
            return None
        if mfa is False:
            raise SignInError(
                f"The device-code page asks {login!r} for multi-factor authentication (number matching).",
                hint="Complete the page's second step, or use the sign-in shortcut that completes it.",
            )
        data, target = _filled(answer.text, target)
        data["mfa"] = "approve"  # the person confirmed the number the page shows
        _check(session.post(target, data=data, timeout=30), login, code)
        return int(number.group(1))
    except requests.RequestException as exc:
        raise SignInError(
            f"Cannot open the device-code page {verification_uri}: {type(exc).__name__}.",
            hint="Is the local stack still running?",
        ) from exc


def _filled(html: str, url: str) -> tuple[dict[str, str], str]:
    """The first POST form of a page: its hidden fields and the absolute URL it posts to."""
    form = read_form(html)
    return dict(form.fields), urljoin(url, form.action) if form.action else url


def _check(answer: requests.Response, login: str, code: str) -> None:
    if answer.status_code >= 400:
        raise SignInError(
            f"The device-code page refused the sign-in as {login!r} (HTTP {answer.status_code}): "
            f"{page_text(answer.text, code)}",
            hint="Check the user name (alice, bob, carol, dave) and run login again.",
        )
