"""Prometheus metrics of the pipeline, in one dedicated registry.

The metric objects live at module level: other modules import them and update them directly
(``metrics.TICKS.inc(n)``). Names are stable; dashboards depend on them.

    mdp_ticks_total                               ticks taken in from sources
    mdp_bars_written_total                        bars written to the store
    mdp_write_queue_depth                         rows waiting in the write queue
    mdp_rate_scale{provider}                      scale applied at the provider's rate gate
    mdp_backpressure_level{provider}              0 ok, 1 soft, 2 hard
    mdp_feedback_events_total{level,outcome}      feedback events seen by the handler or bus
    mdp_dlq_total                                 bus entries dead-lettered
    mdp_bus_consumer_lag                          bus entries not yet delivered to our group
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

REGISTRY = CollectorRegistry(auto_describe=True)

TICKS = Counter("mdp_ticks_total", "Ticks taken in from sources.", registry=REGISTRY)
BARS_WRITTEN = Counter("mdp_bars_written_total", "Bars written to the store.", registry=REGISTRY)
WRITE_QUEUE_DEPTH = Gauge(
    "mdp_write_queue_depth", "Rows waiting in the write queue.", registry=REGISTRY
)
RATE_SCALE = Gauge(
    "mdp_rate_scale",
    "Scale applied at the provider's rate gate (1 full rate, 0 paused).",
    ["provider"],
    registry=REGISTRY,
)
BACKPRESSURE_LEVEL = Gauge(
    "mdp_backpressure_level",
    "Backpressure level holding the provider (0 ok, 1 soft, 2 hard).",
    ["provider"],
    registry=REGISTRY,
)
FEEDBACK_EVENTS = Counter(
    "mdp_feedback_events_total",
    "Feedback events by level and what became of them (applied, unchanged, stale, ...).",
    ["level", "outcome"],
    registry=REGISTRY,
)
ENGINE_WINDOWS = Gauge(
    "mdp_engine_windows",
    "Windows the bar engine holds: open, or closed and retained for allowed lateness.",
    ["kind"],
    registry=REGISTRY,
)
DLQ = Counter("mdp_dlq_total", "Bus entries moved to the dead-letter stream.", registry=REGISTRY)
DLQ_TRIMMED = Counter(
    "mdp_dlq_trimmed_total",
    "Dead letters trimmed off the capped dead-letter stream (oldest first).",
    registry=REGISTRY,
)
BUS_CONSUMER_LAG = Gauge(
    "mdp_bus_consumer_lag",
    "Bus entries not yet delivered to this consumer group.",
    registry=REGISTRY,
)


def serve_metrics(port: int, addr: str = "127.0.0.1") -> Any:
    """Serve the registry over HTTP on ``addr:port`` (e.g. ``serve_metrics(9108)``).

    Returns what ``prometheus_client.start_http_server`` returns (server and thread), so the
    caller can ``shutdown()`` the server.
    """
    return start_http_server(port, addr=addr, registry=REGISTRY)


__all__ = [
    "BACKPRESSURE_LEVEL",
    "BARS_WRITTEN",
    "BUS_CONSUMER_LAG",
    "DLQ",
    "DLQ_TRIMMED",
    "ENGINE_WINDOWS",
    "FEEDBACK_EVENTS",
    "RATE_SCALE",
    "REGISTRY",
    "TICKS",
    "WRITE_QUEUE_DEPTH",
    "serve_metrics",
]
