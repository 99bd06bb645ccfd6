"""Candlestick charts of stored bars: the data the page draws, and one self-contained HTML file.

Both draw with TradingView's Lightweight Charts, shipped in ``static/`` (nothing is loaded from
the internet) through the same ``static/chart.js``: ``mdp bars --plot FILE.html`` inlines the
library, that script and the bars into a single file that opens anywhere, offline.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import UsageError

if TYPE_CHECKING:
    import polars as pl

LIBRARY = "lightweight-charts.standalone.production.js"


def chart_points(frame: pl.DataFrame) -> list[dict[str, Any]]:
    """Return one ``{time, open, high, low, close, volume}`` per bar (time: epoch seconds, UTC).

    ``frame`` holds the bars of one symbol and resolution with ``ts_ns`` (window start).
    """
    import polars as pl

    seconds = (
        pl.col("ts_ns") // 1_000_000_000
        if "ts_ns" in frame.columns
        else pl.col("ts").dt.epoch("s")  # the public frames (read_bars) carry a datetime
    )
    rows = frame.select(
        seconds.alias("time"),
        "open",
        "high",
        "low",
        "close",
        "volume",
    )
    return list(rows.sort("time").iter_rows(named=True))


def write_plot(frame: pl.DataFrame, out: Path) -> int:
    """Write the bars of ``frame`` (one symbol and resolution) as one HTML file; return how many.

    Raise ``UsageError`` when ``frame`` holds several series or none.
    """
    series = frame.select("symbol", "resolution").unique().sort("symbol", "resolution").rows()
    if not series:
        raise UsageError("no bars match: nothing to plot (check --symbol, --resolution, --sink)")
    if len(series) > 1:
        shown = ", ".join(f"{s} {r}" for s, r in series[:4]) + (" ..." if len(series) > 4 else "")
        raise UsageError(
            f"--plot draws one series and {len(series)} match ({shown}): add --symbol and"
            " --resolution"
        )
    symbol, resolution = series[0]
    points = chart_points(frame)
    try:
        out.write_text(standalone_html(points, f"{symbol} {resolution}"), encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot write {out}: {exc.strerror or exc}") from None
    return len(points)


def _static(name: str) -> str:
    return (resources.files("market_data_pipeline.serve") / "static" / name).read_text("utf-8")


def standalone_html(points: list[dict[str, Any]], title: str) -> str:
    """Return one HTML file that draws ``points`` as candles with volume, without a network."""
    data = json.dumps(points).replace("</", "<\\/")  # never closes the script element
    safe_title = _escape(title)
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{safe_title}</title>
<link rel="icon" href="data:,">
<style>body{{margin:0;font:14px system-ui,sans-serif;background:#fff;color:#222}}
h1{{font-size:16px;margin:8px 12px}}#chart{{height:calc(100vh - 48px);margin:0 8px}}</style>
<script>{_static(LIBRARY)}</script>
<script>{_static("chart.js")}</script>
</head>
<body>
<h1>{safe_title}</h1>
<div id="chart"></div>
<script>mdpCandles(document.getElementById("chart"), {data});</script>
</body>
</html>
"""


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
