"""Azure AI Search REST api-versions: which ones the azure-search-documents SDKs send, and which of them carry
document-level access control (``permissionFilter`` fields and the ``x-ms-query-source-authorization`` header).

Shared by the local search service (what it accepts, and how each version behaves) and the MCP server (which
refuses to run on a version that would not trim results to the user).
"""

from __future__ import annotations

# Every version a released azure-search-documents sent by default or offered in its ApiVersion enum, from 11.0
# (2020-06-30) to the pinned 12.1.0b2 (2026-08-01-preview). Azure compares api-versions case-insensitively.
SDK_API_VERSIONS: tuple[str, ...] = (
    "2020-06-30",
    "2020-06-30-preview",
    "2021-04-30-preview",
    "2023-07-01-preview",
    "2023-10-01-preview",
    "2023-11-01",
    "2024-03-01-preview",
    "2024-05-01-preview",
    "2024-07-01",
    "2024-09-01-preview",
    "2024-11-01-preview",
    "2025-03-01-preview",
    "2025-05-01-preview",
    "2025-08-01-preview",
    "2025-09-01",
    "2025-11-01-preview",
    "2026-04-01",
    "2026-05-01-preview",
    "2026-08-01-preview",
)

# Document-level access control is a preview feature: introduced in 2025-05-01-preview, in every preview since,
# and in no GA version (2025-09-01 and 2026-04-01 do not have it).
PERMISSION_API_VERSIONS: frozenset[str] = frozenset(
    {
        "2025-05-01-preview",
        "2025-08-01-preview",
        "2025-11-01-preview",
        "2026-05-01-preview",
        "2026-08-01-preview",
    }
)

SDK_DEFAULT_API_VERSION = "2026-08-01-preview"  # azure-search-documents 12.1.0b2's default


def normalize(version: str) -> str:
    return version.strip().lower()


def is_known(version: str) -> bool:
    return normalize(version) in SDK_API_VERSIONS


def has_permission_filtering(version: str) -> bool:
    """Whether ``version`` knows ``permissionFilter`` and honours ``x-ms-query-source-authorization``."""
    return normalize(version) in PERMISSION_API_VERSIONS
