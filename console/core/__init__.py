"""The console's core: auth, agents, config store, events, server link. Never imports Textual."""
