"""The local Azure AI Search compatible service (document-level permission filtering included)."""

from .app import API_VERSIONS, SearchHandler
from .auth import SEARCH_AUDIENCE, EntraTokenValidator, TokenRejected, TokenValidator
from .errors import SearchError
from .request import SearchParams
from .service import SearchService
from .store import QueryIdentity, SearchStore

__all__ = [
    "API_VERSIONS",
    "SEARCH_AUDIENCE",
    "EntraTokenValidator",
    "QueryIdentity",
    "SearchError",
    "SearchHandler",
    "SearchParams",
    "SearchService",
    "SearchStore",
    "TokenRejected",
    "TokenValidator",
]
