"""The REST paths of the local search service, in both of Azure's styles: ``/indexes('name')/docs('key')`` (OData,
a quote doubled inside a key) and ``/indexes/name/docs/key``.

The path parameters are Starlette convertors whose patterns are the service's rules for names and keys, so a
path that breaks them matches no route (and gets the service's 404).
"""

from __future__ import annotations

from starlette.convertors import Convertor, register_url_convertor


class _QuotedName(Convertor[str]):
    """An index name inside ``('…')``."""

    regex = "[^']*"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


class _PathName(_QuotedName):
    """An index name as a path segment."""

    regex = "[^/()']+"


class _QuotedKey(_QuotedName):
    """A document key inside ``('…')``, where OData doubles a quote."""

    regex = "(?:[^']|'')*"

    def convert(self, value: str) -> str:
        return value.replace("''", "'")


class _PathKey(_QuotedName):
    """A document key as a path segment."""

    regex = "[^/()]+"


# Starlette's convertor registry is global: the names carry this service's prefix.
register_url_convertor("search_quoted_name", _QuotedName())
register_url_convertor("search_path_name", _PathName())
register_url_convertor("search_quoted_key", _QuotedKey())
register_url_convertor("search_path_key", _PathKey())

INDEXES = ["/indexes", "/indexes/"]
_INDEX_STYLES = ("/indexes('{index:search_quoted_name}')", "/indexes/{index:search_path_name}")
KEY_STYLES = ("('{key:search_quoted_key}')", "/{key:search_path_key}")


def on_index(*suffixes: str) -> list[str]:
    """The route paths of ``suffixes`` under an index, in both styles."""
    return [style + suffix for style in _INDEX_STYLES for suffix in suffixes]
