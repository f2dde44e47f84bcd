"""The agent runtime: tool registry, offline demo model, model providers, the factory that builds the agent
graph from configs, hooks that turn SDK callbacks into events, local tracing, the MCP link and the turn runner.

Heavy imports (the Agents SDK) live in the sub-modules; import what you need from them directly."""
