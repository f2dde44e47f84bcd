"""Complete a device-code sign-in on the local identity platform's page, as a person in a browser would.

``obo-console login --as alice`` uses this: a real form POST over HTTPS to the ``verification_uri``, trusting the
local CA explicitly (never the machine's CA-bundle variables).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from html import unescape
from pathlib import Path
from typing import Literal

import requests

from mcp_server.localcloud.ca import trusting_session


class DevicePageError(RuntimeError):
    """The page refused the code or the user; ``message`` is what the page said."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass(frozen=True)
class DevicePageResult:
    action: Literal["approve", "decline"]
    status: int
    message: str


def complete_device_code(
    verification_uri: str,
    user_code: str,
    login: str,
    action: Literal["approve", "decline"] = "approve",
    *,
    ca_cert: Path | str | None = None,
    session: requests.Session | None = None,
    timeout: float = 10.0,
    mfa: bool = False,
) -> DevicePageResult:
    """POST ``user_code``, ``login`` and ``action`` to the device-login page (with ``mfa=approve`` when ``mfa``:
    the second step done). Raises DevicePageError when the page answers with an error (unknown code or user,
    expired code), with the page's own message."""
    if session is None:
        if ca_cert is None:
            raise ValueError("Pass ca_cert (the local CA's PEM) or a session that trusts it.")
        session = trusting_session(ca_cert)
    data = {"user_code": user_code, "login": login, "action": action} | ({"mfa": "approve"} if mfa else {})
    response = session.post(verification_uri, data=data, timeout=timeout)
    message = _page_message(response.text)
    if response.status_code != 200:
        raise DevicePageError(
            message or f"HTTP {response.status_code} from {verification_uri}", response.status_code
        )
    return DevicePageResult(action, response.status_code, message)


def _page_message(html: str) -> str:
    match = (
        re.search(r"<div class=error[^>]*>(.*?)</div>", html, re.S)
        or re.search(r"<p class=ok>(.*?)</p>", html, re.S)
        or re.search(r"<h1>(.*?)</h1>\s*<p>(.*?)</p>", html, re.S)
    )
    if not match:
        return ""
    text = " ".join(match.groups())
    return unescape(re.sub(r"<[^>]+>", "", text)).strip()
