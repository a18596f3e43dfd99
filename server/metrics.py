"""The process's Prometheus metrics, served at `GET /metrics`.

A registry per application (tests build many apps in one process). What
changes once per token, the relayed-token count, is a plain integer read at
scrape time by a collector: no lock and no allocation per token, where a
prometheus `Counter.inc` takes a lock. Everything else is observed once per
turn or per database operation.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from pymongo import monitoring

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
TURN_BUCKETS = (0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600)
FIRST_TOKEN_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30)
DB_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.tokens_relayed = 0  # deltas published by turns; read at scrape time
        self.sse_streams = 0  # open SSE responses
        self._gauges: dict[str, tuple[str, Callable[[], float]]] = {}
        self.turn_seconds = Histogram(
            "chat_turn_duration_seconds",
            "Time from a turn's start to its stored ending, by outcome.",
            ["status"],
            buckets=TURN_BUCKETS,
            registry=self.registry,
        )
        self.first_token_seconds = Histogram(
            "chat_time_to_first_token_seconds",
            "Time from a turn's start to its first relayed text.",
            buckets=FIRST_TOKEN_BUCKETS,
            registry=self.registry,
        )
        self.upstream_errors = Counter(
            "chat_upstream_errors",
            "Turns the model provider failed, by error code.",
            ["code"],
            registry=self.registry,
        )
        self.db_seconds = Histogram(
            "chat_db_operation_seconds",
            "MongoDB command latency, by command.",
            ["command", "outcome"],
            buckets=DB_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(_Live(self))

    def gauge(self, name: str, documentation: str, read: Callable[[], float]) -> None:
        """A value read at scrape time (open connections, running turns)."""
        self._gauges[name] = (documentation, read)

    def command_listener(self) -> monitoring.CommandListener:
        return _CommandTimer(self.db_seconds)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class _Live(Collector):
    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[Metric]:
        yield CounterMetricFamily(
            "chat_tokens_relayed",
            "Text deltas relayed from the model to turns (before any merging for slow readers).",
            value=self._metrics.tokens_relayed,
        )
        yield GaugeMetricFamily(
            "chat_sse_streams_open", "Open SSE turn streams.", value=self._metrics.sse_streams
        )
        for name, (documentation, read) in self._metrics._gauges.items():
            yield GaugeMetricFamily(name, documentation, value=read())


class _CommandTimer(monitoring.CommandListener):
    def __init__(self, histogram: Histogram) -> None:
        self._histogram = histogram

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        return None

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        self._observe(event.command_name, "ok", event.duration_micros)

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        self._observe(event.command_name, "error", event.duration_micros)

    def _observe(self, command: str, outcome: str, micros: int) -> None:
        self._histogram.labels(command, outcome).observe(micros / 1_000_000)
