"""SyntheticSource: determinism, event-time spacing, shapes and price sanity."""

from __future__ import annotations

import math
from collections.abc import AsyncGenerator
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from source_helpers import collect

from market_data_pipeline import core, frames
from market_data_pipeline.errors import UsageError
from market_data_pipeline.sources.synthetic import SyntheticSource

START = 1_700_000_000_000_000_000


def make(**kw: Any) -> SyntheticSource:
    args: dict[str, Any] = {"symbols": ["AAA", "BBB", "CCC"], "ticks": 1000, "start_ns": START}
    args.update(kw)
    return SyntheticSource(**args)


async def test_same_seed_and_start_give_identical_frames() -> None:
    first = [f async for f in make(seed=7).batches()]
    second = [f async for f in make(seed=7).batches()]
    assert len(first) == len(second)
    assert all(a.equals(b) for a, b in zip(first, second, strict=True))


async def test_batches_restart_from_the_first_tick() -> None:
    source = make(seed=3)
    assert (await collect(source)).equals(await collect(source))


async def test_other_seed_gives_other_prices() -> None:
    a = await collect(make(seed=1))
    b = await collect(make(seed=2))
    assert not a["price"].equals(b["price"])


@pytest.mark.parametrize("kind", ["trades", "quotes"])
@settings(max_examples=15, deadline=None)
@given(batch_size=st.integers(1, 700), seed=st.integers(0, 2**32))
async def test_output_does_not_depend_on_batch_size(kind: str, batch_size: int, seed: int) -> None:
    ticks = min(batch_size * 7 + 3, 1500)  # several batches and a partial one, kept quick
    whole = await collect(make(seed=seed, kind=kind, ticks=ticks, batch_size=4096))
    pieces = await collect(make(seed=seed, kind=kind, ticks=ticks, batch_size=batch_size))
    assert pieces.equals(whole)


async def test_tick_count_and_batch_sizes() -> None:
    frames_ = [f async for f in make(ticks=10_001, batch_size=1000).batches()]
    assert [f.height for f in frames_] == [1000] * 10 + [1]
    assert (await collect(make(ticks=0))).is_empty()


async def test_trades_match_the_tick_schema() -> None:
    out = await collect(make())
    assert dict(out.schema) == frames.TICK_SCHEMA


async def test_symbols_round_robin() -> None:
    out = await collect(make(ticks=7))
    assert out["symbol"].to_list() == ["AAA", "BBB", "CCC", "AAA", "BBB", "CCC", "AAA"]


@pytest.mark.parametrize("rate", [1.0, 3.0, 1000.0, 7_000_000.0])
async def test_rate_spaces_event_times(rate: float) -> None:
    out = await collect(make(rate=rate, ticks=5000, batch_size=333))
    expected = [START + math.floor(i * (1e9 / rate)) for i in range(5000)]
    assert out["ts_ns"].to_list() == expected


async def test_default_spacing_is_one_millisecond() -> None:
    out = await collect(make(ticks=4))
    assert out["ts_ns"].to_list() == [START + i * 1_000_000 for i in range(4)]


async def test_default_start_is_a_whole_second_now() -> None:
    import time

    before = time.time_ns() // 10**9 * 10**9
    source = SyntheticSource(symbols=["X"], ticks=1)
    after = time.time_ns()
    assert source.start_ns % 10**9 == 0
    assert before <= source.start_ns <= after
    assert (await collect(source))["ts_ns"][0] == source.start_ns


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**32), symbols=st.integers(1, 12))
async def test_prices_positive_in_cents_and_a_walk(seed: int, symbols: int) -> None:
    names = [f"S{i}" for i in range(symbols)]
    out = await collect(make(symbols=names, seed=seed, ticks=3000, batch_size=512))
    price = out["price"].to_numpy()
    assert (price > 0).all()
    assert np.allclose(price * 100, np.round(price * 100), atol=1e-6)
    for _, group in out.group_by("symbol"):
        # Per tick moves are small (a few basis points), never a jump to another level.
        steps = np.abs(np.diff(np.log(group["price"].to_numpy())))
        assert steps.max() < 0.01


async def test_quotes_bid_below_ask_and_mid_price() -> None:
    out = await collect(make(kind="quotes", ticks=5000))
    assert list(out.schema) == [*frames.TICK_SCHEMA, *frames.QUOTE_EXTRA_SCHEMA]
    assert (out["bid"] < out["ask"]).all()
    assert (out["bid"] > 0).all()
    assert out["price"].equals((out["bid"] + out["ask"]) / 2, check_names=False)
    assert (out["size"] == 0).all()
    assert (out["bid_size"] > 0).all() and (out["ask_size"] > 0).all()


async def test_unbounded_source_keeps_going() -> None:
    source = make(ticks=None, batch_size=100)
    seen = 0
    gen = source.batches()
    assert isinstance(gen, AsyncGenerator)  # closed early below
    async for frame in gen:
        seen += frame.height
        if seen >= 10_000:
            break
    await gen.aclose()
    assert seen == 10_000


async def test_stream_yields_core_models() -> None:
    trades = [t async for t in make(ticks=5).stream()]
    assert all(isinstance(t, core.Trade) for t in trades)
    quotes = [q async for q in make(ticks=5, kind="quotes").stream()]
    assert all(
        isinstance(q, core.Quote) and q.bid is not None and q.ask is not None and q.bid < q.ask
        for q in quotes
    )


@pytest.mark.parametrize(
    "kw",
    [
        {"symbols": []},
        {"symbols": [""]},
        {"kind": "bars"},
        {"rate": 0.0},
        {"ticks": -1},
        {"batch_size": 0},
    ],
)
def test_bad_arguments_raise_usage_error(kw: dict[str, object]) -> None:
    with pytest.raises(UsageError):
        make(**kw)
