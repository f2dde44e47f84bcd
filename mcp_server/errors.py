"""Errors a person can act on: what is wrong and what to do. The CLI prints them without a traceback."""

from __future__ import annotations


class UserError(Exception):
    """An error with a clear message for the user; ``exit_code`` is what the CLI returns."""

    exit_code: int = 1

    def __init__(self, message: str, *, hint: str | None = None, exit_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        if exit_code is not None:
            self.exit_code = exit_code

    def __str__(self) -> str:
        return f"{self.message}\n  → {self.hint}" if self.hint else self.message
