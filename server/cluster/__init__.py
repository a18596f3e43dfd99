"""Processes of one deployment meeting in Redis (optional, `REDIS_URL`).

Live resume of a turn running in another process (its events on a Redis
Stream) and cancel reaching the owner at once (Pub/Sub). MongoDB stays the
record: without Redis, or while it is away, everything falls back to it.
"""
