"""One module per CLI sub-command; each exposes ``register(subparsers)`` and ``run(args) -> int``."""
