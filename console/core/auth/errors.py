"""Sign-in errors a person can act on (all are ``UserError``s: the CLI prints them without a traceback)."""

from __future__ import annotations

from mcp_server.errors import UserError


class KeyringUnavailable(UserError):
    """No usable place to keep the token cache at rest."""


class FileKeyringRefused(UserError):
    """Azure mode refuses a plain-file keyring unless the user opted in."""

    def __init__(self, detail: str) -> None:
        super().__init__(
            f"Refusing to keep Entra ID tokens in a plain file: {detail}.",
            hint="Install/unlock an OS keyring (Secret Service, macOS Keychain, Windows Credential Manager), "
            "or opt in to the file store with OBO_CONSOLE_ALLOW_FILE_KEYRING=true.",
        )


class TokenCacheLocked(UserError):
    """Another process held the token cache lock for too long."""


class TokenCacheCorrupt(UserError):
    """The token cache in the keyring cannot be read back."""


BROWSER_LOGIN_COMMAND = "obo-console login --browser"
DEVICE_CODE_BLOCKED = "AADSTS53003"  # Conditional Access blocked the sign-in (here: the device-code flow)


class DeviceFlowError(UserError):
    """The identity platform ended the device-code flow with an error (declined, expired, ...)."""

    def __init__(self, error: str, description: str = "") -> None:
        self.error = error
        self.description = description
        if self.blocked_by_policy:
            super().__init__(
                "Sign-in failed: this tenant's Conditional Access blocks device-code sign-in for this account "
                f"({DEVICE_CODE_BLOCKED}).",
                hint=f"Sign in in a browser instead: `{BROWSER_LOGIN_COMMAND}`.",
            )
            return
        hints = {
            "authorization_declined": "The sign-in was declined on the device-code page. Run login again to retry.",
            "expired_token": "The code expired before anyone completed the page. Run login again and finish "
            "the page sooner.",
            "bad_verification_code": "The identity platform did not recognise the device code. Run login again.",
        }
        first_line = description.splitlines()[0] if description else ""
        super().__init__(
            f"Sign-in failed: {error}" + (f" ({first_line})" if first_line else ""),
            hint=hints.get(
                error, "Run `obo-console login` again; if it keeps failing, check the identity platform."
            ),
        )

    @property
    def blocked_by_policy(self) -> bool:
        """Conditional Access refused the device-code flow: browser sign-in may still be allowed."""
        return self.description.startswith(f"{DEVICE_CODE_BLOCKED}:")


class BrowserSignInError(UserError):
    """The browser sign-in (authorization code with PKCE) ended without a token: declined, refused, timed out."""

    def __init__(self, error: str, description: str = "", *, hint: str | None = None) -> None:
        self.error = error
        self.description = description
        first_line = description.splitlines()[0] if description else ""
        super().__init__(
            f"Browser sign-in failed: {error}" + (f" ({first_line})" if first_line else ""),
            hint=hint
            or f"Run `{BROWSER_LOGIN_COMMAND}` again; if it keeps failing, check the identity platform.",
        )


class DeviceFlowCancelled(UserError):
    def __init__(self) -> None:
        super().__init__("Sign-in cancelled.", exit_code=130)


class SignInError(UserError):
    """Anything else that stops a sign-in (unknown demo user, unreachable identity platform, ...)."""
