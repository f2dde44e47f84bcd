"""Console-side sign-in: MSAL device-code flow, the token cache in the OS keyring, accounts.

Use ``AuthManager.from_settings()`` (local mode: the running stack's state file; Azure mode: settings).
"""

from console.core.auth.accounts import SignedInAccount
from console.core.auth.device_flow import DeviceCodePrompt, DeviceFlow
from console.core.auth.errors import (
    DeviceFlowCancelled,
    DeviceFlowError,
    FileKeyringRefused,
    KeyringUnavailable,
    SignInError,
    TokenCacheCorrupt,
    TokenCacheLocked,
)
from console.core.auth.manager import AccessToken, AuthManager, TokenStore

__all__ = [
    "AccessToken",
    "AuthManager",
    "DeviceCodePrompt",
    "DeviceFlow",
    "DeviceFlowCancelled",
    "DeviceFlowError",
    "FileKeyringRefused",
    "KeyringUnavailable",
    "SignInError",
    "SignedInAccount",
    "TokenCacheCorrupt",
    "TokenCacheLocked",
    "TokenStore",
]
