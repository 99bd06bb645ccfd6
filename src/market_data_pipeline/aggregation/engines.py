"""One run's bar engines behind the interface of one: time bars per price type, activity bars.

``BarEngine`` builds time bars from a frame's ``price``. A run may ask for bars of other price
types (``1m:bid`` beside ``1m`` of quotes) and for activity bars (``1000tick``); ``BarEngines``
gives each price type its own ``BarEngine`` (fed the frame with ``price`` taken from ``bid`` or
``ask``) and all activity resolutions one ``ActivityEngine``, and merges their bars, counters
and state. With only time bars of the input's own price it is a thin pass-through.

State: ``open_state()`` is the time engines' open windows with the activity engine's state
appended as rows (its own columns, ``part`` set), so a checkpoint stores and restores the one
value it always did; ``watermarks()`` are the time engines' (the same for every price type).

Allowed lateness and the side output of late ticks (``allowed_lateness_ns``, ``keep_late``) are
the time engines' (see ``BarEngine``); their counters, ``state_rows()`` and ``take_late()`` add
up over the price types (a late quote is kept once per price type it missed, its resolutions
named). Activity bars refuse both: a late tick revising a closed activity bar would re-cut
every later bar of the symbol, and the activity engine keeps no late ticks aside.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from copy import copy
from dataclasses import replace

import polars as pl

from ..errors import UsageError
from .activity import PART, STATE_SCHEMA, ActivityEngine
from .activity_labels import QUOTE_PRICES, price_suffix, split_price
from .builder import OPEN_STATE_SCHEMA, WATERMARK_SCHEMA, BarEngine, ResolutionStats
from .calendars import TimeFrame, Windows, make_windows
from .lateness import LATE_SCHEMA
from .resolution import Resolution

log = logging.getLogger(__name__)
_ACTIVITY_ONLY = [name for name in STATE_SCHEMA if name not in OPEN_STATE_SCHEMA]


class BarEngines:
    """Time bars per price type and activity bars, used like one ``BarEngine``."""

    def __init__(
        self,
        resolutions: Sequence[Resolution],
        grace_ns: int,
        *,
        windows: Mapping[str, Windows] | None = None,
        max_hold_s: float = 0.0,
        allowed_lateness_ns: int = 0,
        keep_late: bool = False,
    ) -> None:
        if not resolutions:
            raise UsageError("the bar engine needs at least one resolution")
        _refuse_late_activity(resolutions, allowed_lateness_ns, keep_late)
        self.resolutions = list(resolutions)
        self.grace_ns = grace_ns
        self.max_hold_s = max_hold_s  # of the time bars (activity bars hold nothing back)
        self.allowed_lateness_ns = allowed_lateness_ns
        self.keep_late = keep_late
        by_price: dict[str, list[Resolution]] = {}
        for res in resolutions:
            if not res.is_activity:
                by_price.setdefault(_side(res), []).append(res)
        self.time = {
            side: BarEngine(
                group,
                grace_ns,
                windows=windows,
                max_hold_s=max_hold_s,
                allowed_lateness_ns=allowed_lateness_ns,
                keep_late=keep_late,
            )
            for side, group in by_price.items()
        }
        activity = [res for res in resolutions if res.is_activity]
        self.activity = ActivityEngine(activity, grace_ns) if activity else None
        self._checked = False

    @classmethod
    def restore(
        cls,
        resolutions: Sequence[Resolution],
        grace_ns: int,
        open_state: pl.DataFrame,
        watermarks: pl.DataFrame,
        *,
        windows: Mapping[str, Windows] | None = None,
        allowed_lateness_ns: int = 0,
        keep_late: bool = False,
    ) -> BarEngines:
        """Build engines that continue from ``open_state()`` and ``watermarks()`` of others."""
        engines = cls(
            resolutions,
            grace_ns,
            windows=windows,
            allowed_lateness_ns=allowed_lateness_ns,
            keep_late=keep_late,
        )
        activity_rows = (
            open_state.get_column(PART).is_not_null()
            if PART in open_state.columns
            else pl.Series([False] * open_state.height)
        )
        time_state = open_state.filter(~activity_rows).drop(
            [name for name in _ACTIVITY_ONLY if name in open_state.columns]
        )
        for side, engine in engines.time.items():
            labels = [res.label for res in engine.resolutions]
            mine = time_state.filter(pl.col("resolution").is_in(labels))
            engines.time[side] = BarEngine.restore(
                engine.resolutions,
                grace_ns,
                mine,
                watermarks,
                windows=windows,
                allowed_lateness_ns=allowed_lateness_ns,
                keep_late=keep_late,
            )
        if engines.activity is not None:
            state = open_state.filter(activity_rows).select(list(STATE_SCHEMA))
            engines.activity = ActivityEngine.restore(engines.activity.resolutions, grace_ns, state)
        return engines

    def add_ticks(self, ticks: pl.DataFrame) -> pl.DataFrame:
        """Fold a tick frame into every engine; return the bars closed (``BAR_SCHEMA``)."""
        if not self._checked:
            self._check_prices(ticks)
        out = [engine.add_ticks(_priced(ticks, side)) for side, engine in self.time.items()]
        if self.activity is not None:
            out.append(self.activity.add_ticks(ticks))
        return _concat(out)

    def add_bars(self, bars: pl.DataFrame) -> pl.DataFrame:
        """Resample input bars into time bars (activity bars and price types cannot be)."""
        refused = [res.label for res in self.resolutions if res.is_activity or _side(res)]
        if refused:
            raise UsageError(
                f"cannot build {', '.join(refused)} from input bars: activity bars need every"
                " tick (bars cannot be regrouped by count, volume or value) and bid/ask bars"
                " need quotes; resample bars into time resolutions such as 1h"
            )
        return self.time[""].add_bars(bars)

    def flush(self) -> pl.DataFrame:
        """Emit every open window and unfinished activity bar, and end the stream."""
        out = [engine.flush() for engine in self.time.values()]
        if self.activity is not None:
            out.append(self.activity.flush())
        return _concat(out)

    def stats(self) -> dict[str, ResolutionStats]:
        """Return the counters of every resolution, keyed by label, in the order asked for."""
        merged: dict[str, ResolutionStats] = {}
        for engine in self.time.values():
            merged.update(engine.stats())
        if self.activity is not None:
            merged.update(self.activity.stats())
        return {res.label: merged[res.label] for res in self.resolutions}

    def late_by_origin(self) -> dict[int, int]:
        """Return the late ticks per input file of the finest time resolution."""
        engine = next(iter(self.time.values()), None)
        return engine.late_by_origin() if engine is not None else {}

    def take_late(self) -> pl.DataFrame:
        """Return and forget the late ticks the time engines kept (``keep_late=True``)."""
        late = [engine.take_late() for engine in self.time.values()]
        return _concat(late) if late else pl.DataFrame(schema=LATE_SCHEMA)

    def state_rows(self) -> tuple[int, int]:
        """Return the open and the retained windows of the time engines, summed."""
        rows = [engine.state_rows() for engine in self.time.values()]
        return sum(open_rows for open_rows, _ in rows), sum(retained for _, retained in rows)

    def open_state(self) -> pl.DataFrame:
        """Return the open windows, with the activity state appended (see the module docstring)."""
        frames = [engine.open_state() for engine in self.time.values()]
        if self.activity is not None:
            frames.append(self.activity.state())
        # Time windows first: their columns lead, as BarEngine.restore expects them.
        return pl.concat(frames, how="diagonal") if len(frames) > 1 else frames[0]

    def watermarks(self) -> pl.DataFrame:
        """Return the max event time per symbol of the time bars."""
        engine = next(iter(self.time.values()), None)
        return engine.watermarks() if engine is not None else pl.DataFrame(schema=WATERMARK_SCHEMA)

    def _check_prices(self, ticks: pl.DataFrame) -> None:
        """Refuse price types the input does not have (bid bars of trades, volume of quotes)."""
        quotes = "bid" in ticks.columns and "ask" in ticks.columns
        for res in self.resolutions:
            if quotes and res.price == "last":
                raise UsageError(f"{res.label}: quotes have no last price; use bid, ask or mid")
            if not quotes and res.price in QUOTE_PRICES:
                raise UsageError(f"{res.label}: {res.price} bars need quotes (--kind quotes)")
            if quotes and res.unit in ("volume", "value"):
                raise UsageError(
                    f"{res.label}: quotes carry no traded volume; build tick bars of quotes"
                    " (e.g. 1000tick:bid) or volume/value bars of trades"
                )
        self._checked = True


def _refuse_late_activity(
    resolutions: Sequence[Resolution], allowed_lateness_ns: int, keep_late: bool
) -> None:
    activity = [res.label for res in resolutions if res.is_activity]
    if not activity or not (allowed_lateness_ns or keep_late):
        return
    option = "--allowed-lateness" if allowed_lateness_ns else "--late-output"
    raise UsageError(
        f"{option} is for time bars: activity bars ({', '.join(activity)}) never revise a"
        " closed bar (a late tick would re-cut every later bar of the symbol) and count their"
        f" late ticks; build them in a run without {option}"
    )


def _side(res: Resolution) -> str:
    return res.price if res.price in ("bid", "ask") else ""


def _priced(ticks: pl.DataFrame, side: str) -> pl.DataFrame:
    return ticks.with_columns(pl.col(side).alias("price")) if side else ticks


def _concat(frames: list[pl.DataFrame]) -> pl.DataFrame:
    nonempty = [frame for frame in frames if frame.height]
    if len(nonempty) == 1:
        return nonempty[0]
    return pl.concat(nonempty) if nonempty else frames[0]


def windows_for(
    resolutions: list[Resolution], timeframe: TimeFrame
) -> tuple[list[Resolution], dict[str, Windows]]:
    """Return the resolutions with their stored labels (``1d@XNYS``, ``1d@XNYS:bid``) and the
    windows of the time ones, keyed by stored label.

    Windows are laid out for the plain width; a price type is part of the stored label only.
    A calendar applies to time bars alone: activity bars have no windows and count every tick.
    """
    timed = [res for res in resolutions if not res.is_activity]
    plain = [replace(res, label=split_price(res.label)[0]) for res in timed]
    made = make_windows(plain, timeframe) if plain else {}
    labels: dict[str, str] = {}
    windows: dict[str, Windows] = {}
    for res, base in zip(timed, plain, strict=True):
        window = made[base.label]
        if res.price in ("bid", "ask"):
            window = copy(window)
            window.label = f"{window.label}{price_suffix(res.price)}"
        labels[res.label] = window.label
        windows[window.label] = window
    if timeframe.calendar and len(timed) < len(resolutions):
        log.warning(
            "--calendar %s applies to time bars only: activity bars (%s) count every tick,"
            " in session or not",
            timeframe.calendar,
            ", ".join(res.label for res in resolutions if res.is_activity),
        )
    stored = [replace(res, label=labels.get(res.label, res.label)) for res in resolutions]
    return stored, windows
