"""The console's own errors a person can act on (the base, ``UserError``, is the server's: ``mcp_server.errors``)."""

from __future__ import annotations

from mcp_server.errors import UserError


class NotSignedIn(UserError):
    def __init__(self, message: str = "Not signed in.") -> None:
        super().__init__(
            message, hint="Run `obo-console login` (local mode: `obo-console login --as alice`)."
        )


class StackNotRunning(UserError):
    def __init__(self, detail: str = "") -> None:
        super().__init__(
            "No local stack is running" + (f" ({detail})" if detail else "") + ".",
            hint="Start it with `obo-console server` in another terminal, or run `obo-console`, which starts one.",
        )
