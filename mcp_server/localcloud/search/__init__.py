"""The local Azure AI Search compatible service (document-level permission filtering included).

The package module holds no code and imports nothing: import the named modules (``service``, ``app``, ``store``,
...) directly, so importing any of them never runs a circle back through this file.
"""
