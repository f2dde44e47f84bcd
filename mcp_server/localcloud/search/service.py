"""``SearchService``: the local Azure AI Search compatible service, on its own port and event loop."""

from __future__ import annotations

from pathlib import Path

from pydantic import SecretStr

from mcp_server.localcloud.serve import ThreadedServer

from .app import AudienceCounter, Directory, SearchHandler
from .asgi import SearchApp
from .auth import TokenValidator
from .roles import RoleLookup
from .store import SearchStore


class SearchService:
    """Plain HTTP on ``host:port`` (0: a free port). Data persists in ``data_dir``.

    ``token_validator`` checks ``x-ms-query-source-authorization`` tokens; ``directory(tenant_id, oid)`` returns the
    user's group object ids (None: a tenant the service does not serve, 401; an exception: the query fails with
    503, never a wider result). ``roles_of(tenant_id, object_id)``: the principal's role names on the service, which
    enables ``Authorization: Bearer`` (None: api-key only).
    """

    def __init__(
        self,
        data_dir: Path,
        api_key: SecretStr | str,
        token_validator: TokenValidator,
        directory: Directory,
        host: str = "127.0.0.1",
        port: int = 0,
        roles_of: RoleLookup | None = None,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.api_key = api_key if isinstance(api_key, SecretStr) else SecretStr(api_key)
        self.token_validator = token_validator
        self.directory = directory
        self.host = host
        self.port = port
        self.roles_of = roles_of
        self.store: SearchStore | None = None
        self._server: ThreadedServer | None = None
        self._app: SearchApp | None = None
        self._handler: SearchHandler | None = None
        self._audiences = AudienceCounter()  # kept across restarts of the same service object

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def audiences_seen(self) -> dict[str | None, int]:
        """How many user tokens arrived in ``x-ms-query-source-authorization``, per ``aud`` (None: not a JWT).

        Bounded: a few dozen distinct audiences at most, the rest counted under ``AudienceCounter.OTHER``."""
        return self._audiences.snapshot()

    def set_api_key(self, api_key: SecretStr) -> None:
        """Rotate the admin key live (the portal's Keys > Regenerate): the old key stops working at once."""
        self.api_key = api_key
        if self._handler is not None:
            self._handler.api_key = api_key

    def start(self) -> SearchService:
        if self._server is not None:
            return self
        self.store = SearchStore(self.data_dir)
        self._handler = SearchHandler(
            self.store,
            self.api_key,
            self.token_validator,
            self.directory,
            endpoint=lambda: self.endpoint,
            roles_of=self.roles_of,
        )
        self._handler.audiences_seen = self._audiences
        app = SearchApp(self._handler)
        server = ThreadedServer(app, name="local-search", host=self.host, port=self.port)
        try:
            server.start()
        except BaseException:
            app.close()
            self.store.close()
            self.store = None
            raise
        self._server, self._app = server, app
        self.port = server.port
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None
        if self._app is not None:
            self._app.close()
            self._app = None
        if self.store is not None:
            self.store.close()
            self.store = None

    def __enter__(self) -> SearchService:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
