"""The bundled FastMCP OBO server: strict token validation, cached on-behalf-of exchange, permission-trimmed search.

Entry points: :func:`mcp_server.server.app.create_server` (the app factory) and
:class:`mcp_server.server.config.ServerConfig` (what it needs to know). This package imports nothing, so its
modules never import it back half-built.
"""
