"""OBO Console: a Textual console for identity-aware AI agents."""

__version__ = "0.1.0"
