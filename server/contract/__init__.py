"""The wire contract, machine-readable: OpenAPI for REST, AsyncAPI for WS and SSE.

The documents are generated from pydantic models: the request models the
server validates with (`server.schemas`) and models of what it sends
(`shapes/`, by area; `frames`). `operations/` lists the REST routes by area,
`openapi` and `asyncapi` build the documents, `documents` keeps them serialised.
The tests validate every body and frame they see against these documents, so a
model that drifts from the server fails them.
"""
