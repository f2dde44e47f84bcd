"""Errors in Azure AI Search's wire shape: ``{"error": {"code": "", "message": "..."}}``."""

from __future__ import annotations

from typing import Any


class SearchError(Exception):
    """A request the service refuses; ``status`` is the HTTP status, ``message`` what Azure would say."""

    def __init__(self, status: int, message: str, code: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message}}


def bad_request(message: str) -> SearchError:
    return SearchError(400, message)


def invalid_expression(message: str, parameter: str) -> SearchError:
    """Azure's wording for a bad $filter / $select / $orderby."""
    return SearchError(400, f"Invalid expression: {message}\r\nParameter name: {parameter}")
