"""Search requests as the REST API takes them: a POST body (camelCase keys) or GET query parameters."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from .errors import SearchError, bad_request

DEFAULT_PAGE = 50
MAX_PAGE = 1000
MAX_SKIP = 100_000
MAX_TEXT = (
    100_000  # characters of search text, select, orderby, searchFields ($filter: odata.MAX_FILTER_LENGTH)
)


@dataclass(frozen=True)
class SearchParams:
    search: str | None = None
    search_mode: str = "any"
    query_type: str = "simple"
    search_fields: str | None = None
    select: str | None = None
    filter: str | None = None
    orderby: str | None = None
    top: int | None = None
    skip: int = 0
    count: bool = False

    def next_page(self, page_size: int) -> SearchParams:
        return replace(
            self, skip=self.skip + page_size, top=None if self.top is None else self.top - page_size
        )

    def to_body(self) -> dict[str, Any]:
        """The camelCase body the SDK re-posts as ``@search.nextPageParameters``."""
        body: dict[str, Any] = {
            "count": self.count,
            "searchMode": self.search_mode,
            "queryType": self.query_type,
        }
        for key, value in (
            ("search", self.search),
            ("searchFields", self.search_fields),
            ("select", self.select),
            ("filter", self.filter),
            ("orderby", self.orderby),
            ("top", self.top),
            ("skip", self.skip),
        ):
            if value is not None:
                body[key] = value
        return body


def _str(value: Any, name: str, max_length: int | None = MAX_TEXT) -> str | None:
    if value is None:
        return None
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        value = ",".join(value)
    if not isinstance(value, str):
        raise bad_request(f"The request is invalid. Details: '{name}' must be a string.")
    if max_length is not None and len(value) > max_length:
        raise bad_request(
            f"The request is invalid. Details: '{name}' is {len(value):,} characters long; at most "
            f"{max_length:,} are allowed."
        )
    return value


def _int(value: Any, name: str, *, low: int, high: int | None) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise bad_request(f"The request is invalid. Details: '{name}' must be an integer.")
    if isinstance(value, str):
        try:
            value = int(value.strip())
        except ValueError:
            raise bad_request(
                f"The request is invalid. Details: '{name}' must be an integer, not {value!r}."
            ) from None
    if not isinstance(value, int):
        raise bad_request(f"The request is invalid. Details: '{name}' must be an integer.")
    if value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise bad_request(f"The request is invalid. Details: '{name}' must be {bound}; got {value}.")
    return value


def _bool(value: Any, name: str) -> bool:
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise bad_request(f"The request is invalid. Details: '{name}' must be true or false.")


def _choice(value: Any, name: str, choices: tuple[str, ...], default: str) -> str:
    if value is None:
        return default
    if not isinstance(value, str) or value.lower() not in choices:
        raise bad_request(f"The request is invalid. Details: '{name}' must be one of {', '.join(choices)}.")
    return value.lower()


# The body parameters this service implements, and those Azure AI Search takes but this service does not: never
# silently ignored (a result that quietly differs from Azure's is worse than a refusal).
BODY_PARAMETERS = frozenset(
    {
        "search",
        "searchMode",
        "queryType",
        "searchFields",
        "select",
        "filter",
        "orderby",
        "top",
        "skip",
        "count",
    }
)
UNSUPPORTED_PARAMETERS = frozenset(
    {
        "facets",
        "highlight",
        "highlightPreTag",
        "highlightPostTag",
        "minimumCoverage",
        "scoringProfile",
        "scoringParameters",
        "scoringStatistics",
        "sessionId",
        "semanticConfiguration",
        "semanticErrorHandling",
        "semanticMaxWaitInMilliseconds",
        "semanticQuery",
        "semanticFields",
        "answers",
        "captions",
        "queryRewrites",
        "queryLanguage",
        "speller",
        "debug",
        "vectorQueries",
        "vectorFilterMode",
        "hybridSearch",
    }
)
# GET search: the query-string names of the same parameters.
QUERY_PARAMETERS = {
    "search": "search",
    "searchMode": "searchMode",
    "queryType": "queryType",
    "searchFields": "searchFields",
    "$select": "select",
    "$filter": "filter",
    "$orderby": "orderby",
    "$top": "top",
    "$skip": "skip",
    "$count": "count",
}
UNSUPPORTED_QUERY_PARAMETERS = frozenset(
    {"facet", "highlight", "highlightPreTag", "highlightPostTag", "minimumCoverage", "scoringProfile"}
    | {"scoringParameter", "scoringStatistics", "sessionId", "semanticConfiguration", "answers", "captions"}
    | {"queryLanguage", "speller", "debug", "vectorQueries", "vectorFilterMode"}
)


def unknown_parameter(name: str) -> SearchError:
    """Azure's refusal of a body key the search operation does not define (a misspelling, ``facet``...)."""
    return bad_request(
        f"The request is invalid. Details: parameters : The parameter '{name}' in the request payload is not a "
        "valid parameter for the operation 'search'.\r\n"
    )


def unsupported_parameter(name: str) -> SearchError:
    return bad_request(
        f"The parameter '{name}' is valid for Azure AI Search but not implemented by the local search service, "
        "which refuses it rather than ignore it. Remove it from the request."
    )


def _check_keys(body: dict[str, Any]) -> None:
    for name, value in body.items():
        if name in BODY_PARAMETERS:
            continue
        if name in UNSUPPORTED_PARAMETERS:
            if value is not None:  # an explicit null is the default, as Azure reads it
                raise unsupported_parameter(name)
            continue
        raise unknown_parameter(name)


def params_from_body(body: Any) -> SearchParams:
    if not isinstance(body, dict):
        raise bad_request("The request is invalid. Details: the body must be a JSON object.")
    _check_keys(body)
    query_type = _choice(body.get("queryType"), "queryType", ("simple", "full", "semantic"), "simple")
    if query_type != "simple":
        raise bad_request(
            f"queryType '{query_type}' is not supported by the local search service; use 'simple'."
        )
    return SearchParams(
        search=_str(body.get("search"), "search"),
        search_mode=_choice(body.get("searchMode"), "searchMode", ("any", "all"), "any"),
        query_type=query_type,
        search_fields=_str(body.get("searchFields"), "searchFields"),
        select=_str(body.get("select"), "select"),
        filter=_str(body.get("filter"), "filter", max_length=None),  # its limit has the OData wording
        orderby=_str(body.get("orderby"), "orderby"),
        top=_int(body.get("top"), "top", low=0, high=None),
        skip=_int(body.get("skip"), "skip", low=0, high=MAX_SKIP) or 0,
        count=_bool(body.get("count"), "count"),
    )


def params_from_query(query: Mapping[str, str]) -> SearchParams:
    """GET search: the same keys, with ``$`` on the OData ones; any other query parameter is refused."""
    for name in query:
        if name == "api-version" or name in QUERY_PARAMETERS:
            continue
        if name in UNSUPPORTED_QUERY_PARAMETERS:
            raise unsupported_parameter(name)
        raise bad_request(
            f"The request is invalid. Details: the query parameter '{name}' is not a valid parameter for the "
            "operation 'search'."
        )
    return params_from_body({body: query.get(name) for name, body in QUERY_PARAMETERS.items()})
