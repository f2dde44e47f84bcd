"""The bundled FastMCP OBO server: strict token validation, cached on-behalf-of exchange, permission-trimmed search.

Entry points: :func:`mcp_server.server.app.create_server` (the app factory) and
:class:`mcp_server.server.config.ServerConfig` (what it needs to know).
"""

from mcp_server.server.app import OboServer, create_server
from mcp_server.server.config import ServerConfig

__all__ = ["OboServer", "ServerConfig", "create_server"]
