"""Running the service: one process, or `WEB_CONCURRENCY` workers on one port under a supervisor."""
