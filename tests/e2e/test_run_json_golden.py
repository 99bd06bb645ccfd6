"""``mdp run --json`` keeps its shape: keys, their order, value types and deterministic values.

Each case runs ``mdp run`` in-process and compares the summary with the one captured in
``golden/run_json.json``. Timings, and every count of a run stopped by its wall clock, change
from run to run: only their type is compared. ``UPDATE_GOLDEN=1`` rewrites the file (review
the diff: a change there is a change of the output contract).
"""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from .conftest import MINUTE_NS, T0_NS, Mdp, write_trades_csv

GOLDEN = Path(__file__).parent / "golden" / "run_json.json"
TMP = "<tmp>"
# Wall-clock measurements: their values differ in every run.
TIMINGS = frozenset({"elapsed_s", "ingest_s", "ticks_per_s", "seconds_writing", "seconds_at_level"})
# What the feedback loop saw: whether the store's monitor published during a short run depends
# on timing, so only the type of these is compared.
OPAQUE = frozenset({"coordinators", "outcomes"})
# A run stopped by --duration: how far it got depends on the machine.
STOPPED = TIMINGS | {
    "ticks_read",
    "ticks_admitted",
    "ticks_unprocessed",
    "bars_built",
    "bars_written",
    "ticks_in",
    "ticks_in_bars",
    "open_ticks",
    "batches",
    "max_queue_depth",
    "rows",
    "rows_not_read",
    "read_fraction",
    "last_event_committed",
    "seconds_at_level",
    "rate_changes",
    "late",
    "open_windows",
    "level",
    "scale",
}

Case = Callable[[Path], list[str]]


def _synthetic(tmp: Path) -> list[str]:
    return [
        "-n",
        "2000",
        "-r",
        "1m,5m",
        "--seed",
        "7",
        "--start",
        "2024-01-02T09:00:00Z",
        "--sink",
        f"sqlite:///{tmp / 'bars.db'}",
    ]


def _demo(tmp: Path) -> list[str]:
    return ["--sink", f"sqlite:///{tmp / 'bars.db'}"]


def _replay_files(tmp: Path) -> list[str]:
    one = write_trades_csv(tmp / "one.csv", 600)
    two = write_trades_csv(tmp / "two.csv", 400, symbols=("CCC",))
    return ["-i", str(one), "-i", str(two), "-r", "1m,5m", "--sink", f"sqlite:///{tmp / 'b.db'}"]


def _bad_rows_csv(tmp: Path) -> Path:
    path = write_trades_csv(tmp / "trades.csv", 300)
    lines = path.read_text().splitlines()
    lines[10] = "AAA,not-a-time,100.0,1"
    lines[20] = "BBB,1704186010000,-5,1"
    path.write_text("\n".join(lines) + "\n")
    return path


def _bad_rows_skipped(tmp: Path) -> list[str]:
    path = _bad_rows_csv(tmp)
    return ["-i", str(path), "--on-bad-row", "skip", "--sink", f"sqlite:///{tmp / 'b.db'}"]


def _bad_row_fails(tmp: Path) -> list[str]:
    return ["-i", str(_bad_rows_csv(tmp)), "--sink", f"sqlite:///{tmp / 'b.db'}"]


def _stopped(tmp: Path) -> list[str]:
    frame = pl.read_csv(write_trades_csv(tmp / "trades.csv", 20_000))
    frame.write_parquet(tmp / "trades.parquet", row_group_size=1_000)
    return [
        "-i",
        str(tmp / "trades.parquet"),
        "--speed",
        "100",
        "--duration",
        "1",
        "-r",
        "1m",
        "--sink",
        f"sqlite:///{tmp / 'b.db'}",
    ]


def _out_of_order(tmp: Path) -> Path:
    """Trades a second apart, with every 50th one arriving two minutes late."""
    ts = [T0_NS // 1_000_000 + i * 1_000 for i in range(600)]
    for i in range(150, 600, 50):
        ts[i] -= 2 * MINUTE_NS // 1_000_000
    frame = pl.DataFrame(
        {
            "symbol": ["AAA"] * 600,
            "ts": ts,
            "price": [100.0 + i % 7 for i in range(600)],
            "size": [1] * 600,
        }
    )
    frame.write_csv(tmp / "late.csv")
    return tmp / "late.csv"


def _lateness(tmp: Path) -> list[str]:
    return [
        "-i",
        str(_out_of_order(tmp)),
        "-r",
        "1m",
        "--allowed-lateness",
        "5m",
        "--late-output",
        str(tmp / "late.parquet"),
        "--sink",
        f"sqlite:///{tmp / 'b.db'}",
    ]


def _late_kept_aside(tmp: Path) -> list[str]:
    return [
        "-i",
        str(_out_of_order(tmp)),
        "-r",
        "1m",
        "--late-output",
        str(tmp / "late.csv2.csv"),
        "--sink",
        f"sqlite:///{tmp / 'b.db'}",
    ]


def _late_fails(tmp: Path) -> list[str]:
    return [
        "-i",
        str(_out_of_order(tmp)),
        "-r",
        "1m",
        "--on-late",
        "fail",
        "--sink",
        f"sqlite:///{tmp / 'b.db'}",
    ]


def _activity(tmp: Path) -> list[str]:
    path = write_trades_csv(tmp / "trades.csv", 1_000)
    return ["-i", str(path), "-r", "100tick,1m", "--sink", f"sqlite:///{tmp / 'b.db'}"]


def _gaps(tmp: Path) -> list[str]:
    """XNYS trades on 2024-01-02 from the open, with ten silent minutes after the first five."""
    open_ms = 1_704_205_800_000  # 14:30Z
    ts = [open_ms + i * 1_000 for i in range(300)] + [
        open_ms + 15 * 60_000 + i * 1_000 for i in range(300)
    ]
    frame = pl.DataFrame(
        {"symbol": ["AAA"] * 600, "ts": ts, "price": [100.0] * 600, "size": [1] * 600}
    )
    frame.write_csv(tmp / "gaps.csv")
    return [
        "-i",
        str(tmp / "gaps.csv"),
        "-r",
        "1m",
        "--calendar",
        "XNYS",
        "--fill-gaps",
        "--sink",
        f"sqlite:///{tmp / 'b.db'}",
    ]


def _real_trades(tmp: Path) -> list[str]:
    root = Path(__file__).parents[2]
    name = "es-trades-2013-09-01.csv.gz"
    candidates = [
        root.parent / "shared" / "data" / name,
        root.parents[1] / "shared" / "data" / name,
    ]
    data = next((path for path in candidates if path.is_file()), None)
    if data is None:
        pytest.skip(f"{name} is not in ../shared/data (the real E-mini trades)")
    with gzip.open(data, "rt") as lines:
        head = [next(lines) for _ in range(5_001)]
    (tmp / "es.csv").write_text("".join(head))
    return [
        "-i",
        str(tmp / "es.csv"),
        "-s",
        "ES",
        "--tz",
        "America/Chicago",
        "-r",
        "1m,1h",
        "--sink",
        f"sqlite:///{tmp / 'b.db'}",
    ]


def _usage_error(tmp: Path) -> list[str]:
    return ["-n", "100", "-r", "7x", "--sink", f"sqlite:///{tmp / 'b.db'}"]


def _store_unreachable(tmp: Path) -> list[str]:
    return ["-n", "100", "--sink", "postgresql://mdp:secret@127.0.0.1:1/nope"]


def _sink_is_a_directory(tmp: Path) -> list[str]:
    return ["-n", "100", "--sink", f"sqlite:///{tmp}"]


CASES: dict[str, Case] = {
    "synthetic": _synthetic,
    "demo": _demo,
    "replay_files": _replay_files,
    "bad_rows_skipped": _bad_rows_skipped,
    "bad_row_fails": _bad_row_fails,
    "stopped_by_duration": _stopped,
    "lateness": _lateness,
    "late_kept_aside": _late_kept_aside,
    "late_fails": _late_fails,
    "activity": _activity,
    "gaps": _gaps,
    "real_trades": _real_trades,
    "usage_error": _usage_error,
    "store_unreachable": _store_unreachable,
    "sink_is_a_directory": _sink_is_a_directory,
}


def masked(value: Any, volatile: frozenset[str], hidden: bool = False) -> Any:
    """``value`` with the values under volatile keys replaced by their type name."""
    if isinstance(value, dict):
        return {
            k: f"<{type(v).__name__}>"
            if k in OPAQUE
            else masked(v, volatile, hidden or k in volatile)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [masked(v, volatile, hidden) for v in value]
    return f"<{type(value).__name__}>" if hidden else value


def _run(mdp: Mdp, name: str, tmp: Path) -> tuple[int, dict[str, Any]]:
    code, report = mdp.run_json(*CASES[name](tmp))
    text = json.dumps(report).replace(str(tmp), TMP)
    return code, json.loads(text)


@pytest.mark.parametrize("name", sorted(CASES))
def test_run_json_keeps_its_shape(name: str, mdp: Mdp, tmp_path: Path) -> None:
    code, report = _run(mdp, name, tmp_path)
    volatile = STOPPED if name in ("stopped_by_duration", "demo") else TIMINGS
    got = {"exit_code": code, "report": masked(report, volatile)}
    golden = json.loads(GOLDEN.read_text()) if GOLDEN.exists() else {}
    if os.environ.get("UPDATE_GOLDEN") == "1":
        golden[name] = got
        GOLDEN.write_text(json.dumps(dict(sorted(golden.items())), indent=2) + "\n")
    want = golden[name]
    assert list(got["report"]) == list(want["report"])  # the keys, in their order
    assert got == want
