"""metrics: stable names in a dedicated registry, served over HTTP."""

from __future__ import annotations

import urllib.request

from market_data_pipeline import metrics

NAMES = [
    "mdp_ticks_total",
    "mdp_bars_written_total",
    "mdp_write_queue_depth",
    "mdp_rate_scale",
    "mdp_backpressure_level",
    "mdp_feedback_events_total",
    "mdp_dlq_total",
    "mdp_bus_consumer_lag",
]


def test_serve_metrics_exposes_every_name() -> None:
    metrics.RATE_SCALE.labels(provider="probe").set(0.5)
    metrics.BACKPRESSURE_LEVEL.labels(provider="probe").set(1)
    metrics.FEEDBACK_EVENTS.labels(level="soft", outcome="applied").inc(0)
    server, thread = metrics.serve_metrics(0)
    try:
        url = f"http://127.0.0.1:{server.server_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            body = response.read().decode()
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
    for name in NAMES:
        assert f"\n{name}" in body or body.startswith(name) or f"# TYPE {name}" in body, name
    assert 'mdp_rate_scale{provider="probe"} 0.5' in body
    assert "python_gc" not in body  # a dedicated registry, not the global one
