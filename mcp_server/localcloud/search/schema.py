"""Index definitions: validation as Azure AI Search does it, including the permission-filter attributes.

The stored definition is the normalized JSON the service returns (every attribute filled in), so GET returns the
same shape the SDK's ``SearchIndex`` model reads.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from .errors import SearchError, bad_request

INDEX_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,127}$")
FIELD_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,127}$")
SCALAR_TYPES = {"Edm.String", "Edm.Int32", "Edm.Int64", "Edm.Double", "Edm.Boolean", "Edm.DateTimeOffset"}
PERMISSION_KINDS = {"userIds": "u", "groupIds": "g", "rbacScope": "r"}
MAX_FIELDS = 1000


@dataclass(frozen=True)
class Field:
    name: str
    type: str
    key: bool
    searchable: bool
    filterable: bool
    sortable: bool
    facetable: bool
    retrievable: bool
    permission_filter: str | None

    @property
    def is_collection(self) -> bool:
        return self.type.startswith("Collection(")

    @property
    def element_type(self) -> str:
        return self.type[len("Collection(") : -1] if self.is_collection else self.type


@dataclass(frozen=True)
class IndexSchema:
    name: str
    fields: tuple[Field, ...]
    permission_filter_enabled: bool
    definition: dict[str, Any]

    @property
    def key(self) -> Field:
        return next(f for f in self.fields if f.key)

    def field(self, name: str) -> Field | None:
        return next((f for f in self.fields if f.name == name), None)

    @property
    def searchable(self) -> list[Field]:
        return [f for f in self.fields if f.searchable]

    @property
    def permission_fields(self) -> list[Field]:
        return [f for f in self.fields if f.permission_filter]

    @property
    def trims(self) -> bool:
        """Whether queries are trimmed to what the query's user may read."""
        return self.permission_filter_enabled and bool(self.permission_fields)


def _bool(raw: dict[str, Any], attr: str, default: bool, field_name: str) -> bool:
    value = raw.get(attr)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise bad_request(f"The '{attr}' attribute of field '{field_name}' must be true or false.")
    return value


def _parse_field(raw: Any) -> Field:
    if not isinstance(raw, dict):
        raise bad_request("Each entry of 'fields' must be a JSON object.")
    name = raw.get("name")
    if not isinstance(name, str) or not FIELD_NAME.match(name):
        raise bad_request(
            f"Field name {name!r} is invalid: field names must start with a letter and contain only letters, "
            "digits or underscores (at most 128 characters)."
        )
    ftype = raw.get("type")
    element = (
        ftype[len("Collection(") : -1]
        if isinstance(ftype, str) and ftype.startswith("Collection(") and ftype.endswith(")")
        else ftype
    )
    if not isinstance(ftype, str) or element not in SCALAR_TYPES:
        raise bad_request(
            f"Field '{name}' has an unsupported type {ftype!r}. Supported here: "
            + ", ".join(sorted(SCALAR_TYPES))
            + " and Collection() of them."
        )
    is_string = element == "Edm.String"
    is_collection = ftype != element
    hidden = raw.get("hidden")
    retrievable_default = not hidden if isinstance(hidden, bool) else True
    key = _bool(raw, "key", False, name)
    field = Field(
        name=name,
        type=ftype,
        key=key,
        searchable=_bool(raw, "searchable", is_string, name),
        filterable=_bool(raw, "filterable", True, name),
        sortable=_bool(raw, "sortable", not is_collection, name),
        facetable=_bool(raw, "facetable", True, name),
        retrievable=_bool(raw, "retrievable", retrievable_default, name),
        permission_filter=raw.get("permissionFilter"),
    )
    if field.searchable and not is_string:
        raise bad_request(
            f"Field '{name}' is of type {ftype}, which cannot be searchable; only string fields can."
        )
    if field.sortable and is_collection:
        raise bad_request(f"Field '{name}' is a collection, which cannot be sortable.")
    if key and ftype != "Edm.String":
        raise bad_request(f"The key field '{name}' must be of type Edm.String.")
    if field.permission_filter is not None:
        if field.permission_filter not in PERMISSION_KINDS:
            raise bad_request(
                f"Field '{name}' has an invalid permissionFilter value {field.permission_filter!r}; "
                "use 'userIds', 'groupIds' or 'rbacScope'."
            )
        if not is_string:
            raise bad_request(
                f"The permission filter field '{name}' must be of type Edm.String or Collection(Edm.String)."
            )
        if not field.filterable:
            raise bad_request(f"The permission filter field '{name}' must be filterable.")
        if key:
            raise bad_request(f"The key field '{name}' cannot be a permission filter field.")
    return field


def _normalized(field: Field, raw: dict[str, Any]) -> dict[str, Any]:
    out = {
        "name": field.name,
        "type": field.type,
        "key": field.key,
        "retrievable": field.retrievable,
        "stored": True,
        "searchable": field.searchable,
        "filterable": field.filterable,
        "sortable": field.sortable,
        "facetable": field.facetable,
        "permissionFilter": field.permission_filter,
        "analyzer": raw.get("analyzer"),
        "searchAnalyzer": raw.get("searchAnalyzer"),
        "indexAnalyzer": raw.get("indexAnalyzer"),
        "synonymMaps": raw.get("synonymMaps") or [],
        "fields": [],
    }
    return out


def parse_index(raw: Any, *, name_from_url: str | None = None) -> IndexSchema:
    """Validate an index definition (a request body) and return its normalized schema."""
    if not isinstance(raw, dict):
        raise bad_request("The request body must be a JSON object describing the index.")
    name = raw.get("name", name_from_url)
    if name_from_url is not None and name != name_from_url:
        raise bad_request(
            f"The index name '{name}' in the request body does not match the name '{name_from_url}' in the URL."
        )
    if not isinstance(name, str) or not INDEX_NAME.match(name):
        raise bad_request(
            f"Index name {name!r} is invalid: use lowercase letters, digits or dashes, starting with a letter or digit "
            "(at most 128 characters)."
        )
    raw_fields = raw.get("fields")
    if not isinstance(raw_fields, list) or not raw_fields:
        raise bad_request("The index definition must contain a non-empty 'fields' array.")
    if len(raw_fields) > MAX_FIELDS:
        raise bad_request(f"An index can have at most {MAX_FIELDS} fields.")
    fields = [_parse_field(f) for f in raw_fields]
    seen: set[str] = set()
    for f in fields:
        if f.name.lower() in seen:
            raise bad_request(f"The field name '{f.name}' is used more than once in the index definition.")
        seen.add(f.name.lower())
    keys = [f for f in fields if f.key]
    if len(keys) != 1:
        raise bad_request("The index definition must have exactly one key field of type Edm.String.")
    kinds: dict[str, str] = {}
    for f in fields:
        if f.permission_filter:
            if f.permission_filter in kinds:
                raise bad_request(
                    f"Only one field per permission filter type is allowed: '{kinds[f.permission_filter]}' and "
                    f"'{f.name}' both have permissionFilter '{f.permission_filter}'."
                )
            kinds[f.permission_filter] = f.name
    option = raw.get("permissionFilterOption")
    if option is not None and (not isinstance(option, str) or option.lower() not in ("enabled", "disabled")):
        raise bad_request(f"permissionFilterOption must be 'enabled' or 'disabled', not {option!r}.")
    enabled = isinstance(option, str) and option.lower() == "enabled"
    definition: dict[str, Any] = {k: v for k, v in raw.items() if not k.startswith("@odata")}
    definition["name"] = name
    definition["fields"] = [_normalized(f, r) for f, r in zip(fields, raw_fields, strict=True)]
    definition["permissionFilterOption"] = option.lower() if isinstance(option, str) else None
    for key in ("scoringProfiles", "suggesters", "analyzers", "tokenizers", "tokenFilters", "charFilters"):
        definition.setdefault(key, [])
    return IndexSchema(
        name=name, fields=tuple(fields), permission_filter_enabled=enabled, definition=definition
    )


def check_update(old: IndexSchema, new: IndexSchema) -> None:
    """Azure refuses updates that change or drop existing fields (adding fields, permission attributes is fine)."""
    for f in old.fields:
        nf = new.field(f.name)
        if nf is None:
            raise SearchError(
                400,
                f"Existing field(s) '{f.name}' cannot be deleted. Rebuild the index (delete and create it) to remove fields.",
            )
        if nf.type != f.type or nf.key != f.key:
            raise SearchError(
                400,
                f"Existing field '{f.name}' cannot be changed (type or key). Rebuild the index to change it.",
            )
