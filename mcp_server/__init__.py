"""The bundled FastMCP OBO server and, in ``localcloud``, the local identity platform and search service."""
