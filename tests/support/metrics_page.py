"""Reading a run's Prometheus endpoint (``--metrics-port``) the way a scraper does."""

from __future__ import annotations

import urllib.request


def scrape(port: int) -> str:
    """Return the metrics page of the endpoint on ``port``."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        return str(response.read().decode())


def scrape_if_up(port: int) -> str:
    """Return the metrics page, or "" while the endpoint is not listening (yet or any more)."""
    try:
        return scrape(port)
    except OSError:  # URLError, a refused or reset connection, a timeout
        return ""


def metric(port: int, name: str) -> float | None:
    """Return the value of the sample ``name`` (with its labels), None if it is not served."""
    for line in scrape_if_up(port).splitlines():
        if line.startswith(f"{name} "):
            return float(line.split()[1])
    return None
