"""Agent configs: the typed model (``model``), JSON Schema validation (``validation``), the catalog that reconciles
a set of configs (``catalog``), and the file and Redis stores with live reload (``store``, ``open_store``, ``live``).

Import each name from its module: this package imports nothing, so importing one module loads only what it needs.
"""
