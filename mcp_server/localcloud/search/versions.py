"""Index definitions as each api-version sees them: ``permissionFilter`` and ``permissionFilterOption`` exist only in
the preview versions with document-level access control (``mcp_server.search_versions``).

Under any other version the attributes are unknown properties (refused the way Azure refuses any unknown property),
are left out of the definitions the service returns, and survive an update made under that version unchanged — a
client that cannot see them must not be able to switch trimming off by omitting them.
"""

from __future__ import annotations

import copy
from typing import Any

from mcp_server import search_versions

from .errors import bad_request

FIELD_ATTRIBUTE = "permissionFilter"
INDEX_ATTRIBUTE = "permissionFilterOption"


def _type_name(version: str) -> str:
    """The service's model namespace of ``version``, e.g. ``V2026_04_01`` (Azure's error messages name it)."""
    return "V" + search_versions.normalize(version).replace("-preview", "_Preview").replace("-", "_")


def _unknown_property(name: str, owner: str, version: str) -> Exception:
    return bad_request(
        f"The request is invalid. Details: definition : The property '{name}' does not exist on type "
        f"'Microsoft.Azure.Search.{_type_name(version)}.{owner}'. Make sure to only use property names that are "
        f"defined by the type. (Document-level access control needs a preview api-version such as "
        f"{search_versions.SDK_DEFAULT_API_VERSION}.)"
    )


def check_definition(body: Any, version: str) -> Any:
    """Refuse permission attributes in an index definition sent under a version that does not define them."""
    if search_versions.has_permission_filtering(version) or not isinstance(body, dict):
        return body
    if body.get(INDEX_ATTRIBUTE) is not None:
        raise _unknown_property(INDEX_ATTRIBUTE, "Index", version)
    fields = body.get("fields")
    for field in fields if isinstance(fields, list) else []:
        if isinstance(field, dict) and field.get(FIELD_ATTRIBUTE) is not None:
            raise _unknown_property(FIELD_ATTRIBUTE, "IndexField", version)
    return body


def keep_permissions(body: Any, stored: dict[str, Any] | None, version: str) -> Any:
    """An update under a version without the attributes keeps the stored ones (fields matched by name)."""
    if search_versions.has_permission_filtering(version) or stored is None or not isinstance(body, dict):
        return body
    merged = copy.deepcopy(body)
    if stored.get(INDEX_ATTRIBUTE) is not None:
        merged[INDEX_ATTRIBUTE] = stored[INDEX_ATTRIBUTE]
    kinds = {f["name"]: f.get(FIELD_ATTRIBUTE) for f in stored.get("fields", []) if isinstance(f, dict)}
    for field in merged.get("fields") or []:
        if isinstance(field, dict) and kinds.get(field.get("name")) is not None:
            field[FIELD_ATTRIBUTE] = kinds[field["name"]]
    return merged


def definition_for(definition: dict[str, Any], version: str) -> dict[str, Any]:
    """The stored definition as ``version`` returns it: without the attributes that version does not define."""
    if search_versions.has_permission_filtering(version):
        return definition
    out = {k: v for k, v in definition.items() if k != INDEX_ATTRIBUTE}
    out["fields"] = [
        {k: v for k, v in f.items() if k != FIELD_ATTRIBUTE} if isinstance(f, dict) else f
        for f in definition.get("fields", [])
    ]
    return out
