"""One screen per module, each with its own .tcss."""
