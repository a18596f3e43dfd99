"""Conversations leaving the service and coming back: export, import, share links."""
