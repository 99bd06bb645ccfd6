"""BarEngines gives its time engines the allowed lateness and refuses it for activity bars."""

from __future__ import annotations

import polars as pl
import pytest

from market_data_pipeline import api
from market_data_pipeline.aggregation.engines import BarEngines
from market_data_pipeline.aggregation.resolution import parse_resolutions
from market_data_pipeline.errors import UsageError

MIN = 60_000_000_000
LATENESS = 2 * MIN  # the first window (ending at 1m) is retained while the watermark is below 3m


def quotes(rows: list[tuple[int, float, float]]) -> pl.DataFrame:
    """Quotes of ES from (ts_ns, bid, ask) rows; ``price`` is the mid, as sources give it."""
    return pl.DataFrame(
        {
            "symbol": ["ES"] * len(rows),
            "ts_ns": [ts for ts, _, _ in rows],
            "price": [(bid + ask) / 2 for _, bid, ask in rows],
            "size": [0.0] * len(rows),
            "bid": [bid for _, bid, _ in rows],
            "ask": [ask for _, _, ask in rows],
        }
    )


def test_every_price_type_revises_its_bar_and_the_state_adds_up() -> None:
    engines = BarEngines(
        parse_resolutions("1m,1m:bid"), 0, allowed_lateness_ns=LATENESS, keep_late=True
    )
    first = engines.add_ticks(quotes([(10, 1.0, 3.0), (2 * MIN, 5.0, 7.0)]))
    assert sorted(first.get_column("resolution").to_list()) == ["1m", "1m:bid"]
    revised = engines.add_ticks(quotes([(20, 0.0, 8.0)]))  # late, within the lateness
    by_label = {row["resolution"]: row for row in revised.iter_rows(named=True)}
    assert by_label["1m"]["revision"] == 1 and by_label["1m"]["close"] == 4.0
    assert by_label["1m:bid"]["revision"] == 1 and by_label["1m:bid"]["low"] == 0.0
    stats = engines.stats()
    assert [stats[label].bars_revised for label in ("1m", "1m:bid")] == [1, 1]
    assert [stats[label].ticks_revising for label in ("1m", "1m:bid")] == [1, 1]
    assert engines.state_rows() == (2, 2)  # one open and one retained window per price type
    engines.add_ticks(quotes([(4 * MIN, 5.0, 7.0), (30, 1.0, 3.0)]))  # past the lateness
    late = engines.take_late()
    assert sorted(late.get_column("resolutions").to_list()) == ["1m", "1m:bid"]
    assert engines.take_late().height == 0


def test_a_restored_engine_keeps_the_retained_windows() -> None:
    res = parse_resolutions("1m,1m:bid")
    engines = BarEngines(res, 0, allowed_lateness_ns=LATENESS)
    engines.add_ticks(quotes([(10, 1.0, 3.0), (2 * MIN, 5.0, 7.0)]))
    again = BarEngines.restore(
        res, 0, engines.open_state(), engines.watermarks(), allowed_lateness_ns=LATENESS
    )
    assert again.state_rows() == (2, 2)
    revised = again.add_ticks(quotes([(20, 0.0, 8.0)]))
    assert revised.get_column("revision").to_list() == [1, 1]


@pytest.mark.parametrize(
    ("options", "said"),
    [
        ({"allowed_lateness_ns": MIN}, "--allowed-lateness is for time bars"),
        ({"keep_late": True}, "--late-output is for time bars"),
    ],
)
def test_activity_bars_refuse_allowed_lateness_and_the_late_output(
    options: dict[str, int | bool], said: str
) -> None:
    with pytest.raises(UsageError, match=said):
        BarEngines(parse_resolutions("1m,1000tick"), 0, **options)  # type: ignore[arg-type]


def test_the_api_refuses_activity_bars_with_allowed_lateness() -> None:
    trades = pl.DataFrame({"symbol": ["ES"], "ts": [0], "price": [1.0], "size": [1.0]})
    with pytest.raises(UsageError, match="activity bars \\(100tick\\) never revise"):
        api.bars(trades, "100tick", allowed_lateness="10s")
    assert api.bars(trades, "100tick").get_column("incomplete").to_list() == [True]
