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


class NotSignedIn(UserError):
    def __init__(self, message: str = "Not signed in.") -> None:
        super().__init__(message, hint="Run `obo-console login` (local mode: `obo-console login --as alice`).")


class StackNotRunning(UserError):
    def __init__(self, detail: str = "") -> None:
        super().__init__(
            "No local stack is running" + (f" ({detail})" if detail else "") + ".",
            hint="Start it with `obo-console server` in another terminal, or run `obo-console`, which starts one.",
        )
