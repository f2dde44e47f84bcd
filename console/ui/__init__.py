"""The Textual UI: a thin layer over ``console.core`` (see protocols.py for the interface it uses)."""
