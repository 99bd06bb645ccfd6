"""``--metrics-port`` serves the documented Prometheus metric names while a run is going."""

from __future__ import annotations

import asyncio
from pathlib import Path

from metrics_page import scrape_if_up
from ports import free_port

from market_data_pipeline.config import load_settings
from market_data_pipeline.runtime import execute

NAMES = (
    "mdp_ticks_total",
    "mdp_bars_written_total",
    "mdp_write_queue_depth",
    'mdp_rate_scale{provider="synthetic"}',
    'mdp_backpressure_level{provider="synthetic"}',
    "mdp_dlq_total",
    "mdp_bus_consumer_lag",
)


async def test_metrics_are_served_during_a_run(tmp_path: Path) -> None:
    port = free_port()
    settings = load_settings(
        config_file=None,
        environ={},
        flags={
            "rate": 2000,
            "resolution": "1s",
            "grace": "0",
            "duration": 4,
            "metrics_port": port,
            "sink": f"sqlite:///{tmp_path / 'm.db'}",
        },
    )
    run = asyncio.create_task(execute(settings))
    # Scrape until the run shows ticks and written bars (not after a fixed time: on a loaded
    # machine the first window may close late); the run must still be going when it does.
    body = ""
    while not run.done() and not _shows_progress(body):
        await asyncio.sleep(0.05)
        body = await asyncio.to_thread(scrape_if_up, port)
    assert _shows_progress(body), "the run ended before its metrics showed ticks and bars"
    report = await run
    assert report.exit_code == 0
    for name in NAMES:
        assert name in body, name
    assert _value(body, "mdp_ticks_total") > 0
    assert _value(body, "mdp_bars_written_total") > 0


def _value(body: str, name: str) -> float:
    line = next(line for line in body.splitlines() if line.startswith(f"{name} "))
    return float(line.split()[1])


def _shows_progress(body: str) -> bool:
    names = ("mdp_ticks_total ", "mdp_bars_written_total ")
    values = [float(ln.split()[1]) for ln in body.splitlines() if ln.startswith(names)]
    return len(values) == 2 and min(values) > 0
