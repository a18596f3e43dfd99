"""MCP servers' tools for the model: configuration, one connection a server, the hub.

`hub.McpHub` is what the rest of the service sees: Anthropic tool definitions
namespaced by server, and `call()` that always answers with a result, never
raises for a tool's failure. The `mcp` SDK is imported only when a server is
configured (it costs a second of start-up).
"""
