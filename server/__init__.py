"""Realtime AI chat service: streaming conversations with Claude over WebSocket and SSE."""

__version__ = "0.1.0"
