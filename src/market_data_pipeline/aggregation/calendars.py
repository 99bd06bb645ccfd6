"""Where bar windows start and end: epoch widths, local days, weeks, months, trading sessions.

One vectorised entry point, ``Windows.bounds(ts_ns)``, gives every event time its window
``[start, end)`` in UTC nanoseconds, and ``Windows.inside`` whether it falls in a trading session.

- Widths below a day (``1s`` ... ``4h``) are epoch-aligned: ``start = ts - ts % width``.
- Days and longer are laid out in a time zone (``TimeFrame.tz``, IANA name): a day runs from local
  midnight to the next (23 or 25 hours on a DST change), a week from 00:00 of the week-start day
  (Monday unless told), a month, quarter or year from 00:00 of its first day. A local midnight
  that does not exist (a DST jump at midnight) starts at the first instant of that day.
- With a calendar (``TimeFrame.calendar``, an exchange-calendars code such as ``XNYS``), ``1d``
  is the trading session, open to close (early closes included, holidays have none), and with
  ``align="session"`` intraday windows start at each session's open, the last one cut at the
  close. Event times outside every session (or in a lunch break) are ``inside == False``: the
  bar engine counts them as ``outside session``. Labels carry the code: ``1d@XNYS``, ``1h@XNYS``.

exchange-calendars (the ``calendars`` extra) is imported only when a calendar is named.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import polars as pl

from ..errors import UsageError
from .resolution import Resolution

Align = Literal["epoch", "session"]
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_EPOCH_WEEKDAY = 3  # 1970-01-01 was a Thursday (Monday = 0)
_DAY_NS = 86_400 * 1_000_000_000


@dataclass(frozen=True, slots=True)
class TimeFrame:
    """How windows are laid out: zone, week start (0 = Monday), trading calendar, alignment."""

    tz: str = "UTC"
    week_start: int = 0
    calendar: str | None = None
    align: Align = "epoch"


@dataclass(frozen=True, slots=True)
class WindowBounds:
    """Per event time: window ``start`` and ``end`` (Int64 ns, null when outside a session)."""

    start: pl.Series
    end: pl.Series


def parse_week_start(text: str) -> int:
    """Return 0 (Monday) ... 6 (Sunday) for a weekday name or its first three letters."""
    key = text.strip().lower()
    for number, name in enumerate(WEEKDAYS):
        if key in (name, name[:3]):
            return number
    raise UsageError(f"bad --week-start {text!r}: expected a weekday, e.g. monday or sunday")


@cache
def zone(name: str) -> ZoneInfo:
    """Return the IANA zone ``name``; raise ``UsageError`` naming it when unknown."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise UsageError(
            f"unknown time zone {name!r}: expected an IANA name, e.g. America/New_York"
        ) from None


def make_windows(resolutions: list[Resolution], frame: TimeFrame) -> dict[str, Windows]:
    """Return the windows of every resolution, keyed by its plain label (``"1d"``)."""
    sessions = Sessions(frame.calendar) if frame.calendar else None
    days = LocalDays()
    return {res.label: Windows(res, frame, sessions, days) for res in resolutions}


class LocalDays:
    """Local day numbers of the last event times asked for, shared by one run's resolutions.

    The engine asks every resolution about the same Series in turn; converting it to local
    days once instead of once per resolution saves a time-zone pass each.
    """

    def __init__(self) -> None:
        self._key: tuple[pl.Series, str] | None = None
        self._days: pl.Series | None = None

    def of(self, ts_ns: pl.Series, tz: str) -> pl.Series:
        """Return the local day (days since 1970-01-01 in ``tz``) of each event time."""
        if self._key is not None and self._key[0] is ts_ns and self._key[1] == tz:
            assert self._days is not None
            return self._days
        self._key, self._days = (ts_ns, tz), _local_days(ts_ns, tz)
        return self._days


class Windows:
    """The windows of one resolution under one ``TimeFrame``."""

    def __init__(
        self,
        res: Resolution,
        frame: TimeFrame,
        sessions: Sessions | None,
        days: LocalDays | None = None,
    ) -> None:
        if sessions is None and frame.align == "session":
            raise UsageError("--align session needs --calendar CODE (e.g. XNYS)")
        if sessions is not None and res.unit == "d" and res.count != 1:
            raise UsageError(f"{res.label} with a calendar: use 1d (one session) or 1w")
        self.res = res
        self.frame = frame
        self.sessions = sessions
        tz = frame.tz if frame.tz != "UTC" or sessions is None else sessions.tz
        self.zone = zone(tz)
        suffix = f"@{sessions.code}" if sessions is not None else ""
        self.label = f"{res.label}{suffix}"
        self._midnights: dict[int, int] = {}
        self._days = days or LocalDays()

    @property
    def by_session(self) -> bool:
        """True when the sessions themselves shape the windows (not only filter ticks)."""
        if self.sessions is None:
            return False
        return self.res.label == "1d" or (
            not self.res.is_calendar and self.frame.align == "session"
        )

    def bounds(self, ts_ns: pl.Series) -> WindowBounds:
        """Return the window of every event time in ``ts_ns`` (Int64 UTC ns)."""
        if self.by_session:
            assert self.sessions is not None
            return self.sessions.bounds(ts_ns, None if self.res.unit == "d" else self.res.ns)
        if not self.res.is_calendar:
            return _fixed(ts_ns, self.res.ns, 0)
        if self.zone.key == "UTC" and self.res.unit in ("d", "w"):
            # UTC days and weeks have fixed lengths: plain arithmetic, no zone lookups.
            ref = 0 if self.res.unit == "d" else (self.frame.week_start - _EPOCH_WEEKDAY) * _DAY_NS
            return _fixed(ts_ns, self.res.ns, ref)
        return self._calendar_bounds(ts_ns)

    def inside(self, ts_ns: pl.Series) -> pl.Series | None:
        """Return whether each event time is in a session; None without a calendar."""
        return None if self.sessions is None else self.sessions.inside(ts_ns)

    def session_windows(self, lo_ns: int, hi_ns: int) -> np.ndarray[Any, Any]:
        """Return the sorted starts in ``[lo_ns, hi_ns)`` of windows that meet a session.

        Without a calendar every window counts (there is no notion of a closed market).
        """
        if self.sessions is None:
            return np.empty(0, dtype=np.int64)
        # A session spanning lo_ns opened at most a few days before it.
        opens, closes = self.sessions.between(lo_ns - 7 * _DAY_NS, hi_ns)
        keep = closes > lo_ns
        opens, closes = opens[keep], closes[keep]
        if self.by_session and self.res.unit == "d":
            starts = opens
        elif self.by_session or not self.res.is_calendar:
            starts = self._steps(opens, closes)
        else:
            edges = pl.Series(np.concatenate([opens, closes - 1]), dtype=pl.Int64)
            starts = self.bounds(edges).start.to_numpy()
        starts = np.unique(starts)
        return starts[(starts >= lo_ns) & (starts < hi_ns)]

    def _steps(self, opens: np.ndarray[Any, Any], closes: np.ndarray[Any, Any]) -> Any:
        """Return the starts of the fixed-width windows meeting each session."""
        width = self.res.ns
        first = opens if self.by_session else opens - opens % width
        counts = (closes - first + width - 1) // width
        base = np.repeat(first, counts)
        offsets = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
        return base + offsets * width

    def _calendar_bounds(self, ts_ns: pl.Series) -> WindowBounds:
        days = self._days.of(ts_ns, self.zone.key)
        first, after = _period_days(days, self.res, self.frame.week_start)
        return WindowBounds(
            self._midnight(first).alias("start"), self._midnight(after).alias("end")
        )

    def _midnight(self, days: pl.Series) -> pl.Series:
        """Map local day numbers (days since 1970-01-01) to the UTC ns of their first instant."""
        missing = [d for d in days.unique().drop_nulls().to_list() if d not in self._midnights]
        for day in missing:
            self._midnights[day] = local_midnight_ns(day, self.zone)
        keys = list(self._midnights)
        return days.replace_strict(
            keys, [self._midnights[k] for k in keys], default=None, return_dtype=pl.Int64
        )


def _fixed(ts_ns: pl.Series, width_ns: int, origin_ns: int) -> WindowBounds:
    start = ts_ns - (ts_ns - origin_ns) % width_ns
    return WindowBounds(start.alias("start"), (start + width_ns).alias("end"))


def local_midnight_ns(day: int, tz: ZoneInfo) -> int:
    """Return the UTC ns of the first instant of local day ``day`` (days since 1970-01-01)."""
    local = datetime.combine(date.fromordinal(day + _EPOCH_ORDINAL), time(), tzinfo=tz)
    # fold=0 in a gap takes the offset from before it: the first instant after the jump.
    return (local - _EPOCH) // timedelta(microseconds=1) * 1_000


def _local_days(ts_ns: pl.Series, tz: str) -> pl.Series:
    stamps = pl.from_epoch(ts_ns, time_unit="ns").dt.replace_time_zone("UTC")
    if tz != "UTC":
        stamps = stamps.dt.convert_time_zone(tz)
    return stamps.dt.date().cast(pl.Int32).cast(pl.Int64)


def _period_days(days: pl.Series, res: Resolution, week_start: int) -> tuple[pl.Series, pl.Series]:
    """Return the first local day of each day's window and the first day after it."""
    n = res.count
    if res.unit == "d":
        first = days - days % n
        return first, first + n
    if res.unit == "w":
        ref = week_start - _EPOCH_WEEKDAY  # a day number that falls on the week-start day
        week = (days - ref) // 7
        first = ref + (week - week % n) * 7
        return first, first + 7 * n
    frame = pl.DataFrame({"d": days.cast(pl.Int32).cast(pl.Date)})
    month = pl.col("d").dt.year().cast(pl.Int64) * 12 + pl.col("d").dt.month().cast(pl.Int64) - 1
    step = res.months
    start = month - month % step
    out = frame.select(_month_day(start).alias("first"), _month_day(start + step).alias("after"))
    return out["first"], out["after"]


def _month_day(month: pl.Expr) -> pl.Expr:
    return pl.date(month // 12, month % 12 + 1, 1).cast(pl.Int32).cast(pl.Int64)


class Sessions:
    """The sessions of one exchange calendar as sorted UTC ns arrays, loaded as ticks need them."""

    def __init__(self, code: str) -> None:
        self.code = code.upper()
        self._xc = _exchange_calendars()
        if self.code not in self._xc.get_calendar_names():
            raise UsageError(
                f"unknown calendar {code!r}: expected an exchange-calendars code such as "
                "XNYS, XNAS, XLON, CMES or XTKS"
            )
        self.tz = str(self._calendar("2020-01-01", "2020-12-31").tz)
        self._years: tuple[int, int] | None = None
        empty = np.empty(0, dtype=np.int64)
        self.opens = self.closes = self.break_starts = self.break_ends = empty

    def inside(self, ts_ns: pl.Series) -> pl.Series:
        """Return, per event time, whether it is between a session's open and close (no break)."""
        ts, idx = self._find(ts_ns)
        safe = np.maximum(idx, 0)
        in_session = (idx >= 0) & (ts < self.closes[safe])
        in_break = (ts >= self.break_starts[safe]) & (ts < self.break_ends[safe])
        return pl.Series("inside", in_session & ~in_break)

    def bounds(self, ts_ns: pl.Series, width_ns: int | None) -> WindowBounds:
        """Return session windows: the whole session, or ``width_ns`` steps from its open."""
        ts, idx = self._find(ts_ns)
        safe = np.maximum(idx, 0)
        opens, closes = self.opens[safe], self.closes[safe]
        valid = (idx >= 0) & (ts < closes)
        if width_ns is None:
            start, end = opens, closes
        else:
            start = opens + (ts - opens) // width_ns * width_ns
            end = np.minimum(start + width_ns, closes)
        out = pl.DataFrame({"start": start, "end": end, "valid": valid}).select(
            pl.when("valid").then(pl.col("start")).alias("start"),
            pl.when("valid").then(pl.col("end")).alias("end"),
        )
        return WindowBounds(out["start"], out["end"])

    def between(self, lo_ns: int, hi_ns: int) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
        """Return the opens and closes of the sessions opening in ``[lo_ns, hi_ns)``."""
        self._ensure(lo_ns, hi_ns)
        first, last = np.searchsorted(self.opens, [lo_ns, hi_ns], side="left")
        return self.opens[first:last], self.closes[first:last]

    def _find(self, ts_ns: pl.Series) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
        ts = ts_ns.cast(pl.Int64).to_numpy()
        if len(ts):
            self._ensure(int(ts.min()), int(ts.max()))
        return ts, np.searchsorted(self.opens, ts, side="right") - 1

    def _calendar(self, start: str, end: str) -> Any:
        with warnings.catch_warnings():
            # exchange-calendars 4.x on pandas 3.1 warns about its own use of Series.values.
            warnings.filterwarnings("ignore", message="Series.values returning an ndarray")
            return self._xc.get_calendar(self.code, start=start, end=end)

    def _ensure(self, lo_ns: int, hi_ns: int) -> None:
        lo, hi = _year(lo_ns) - 1, _year(hi_ns) + 1
        if self._years is not None and self._years[0] <= lo and hi <= self._years[1]:
            return
        if self._years is not None:
            lo, hi = min(lo, self._years[0]), max(hi, self._years[1])
        schedule = self._calendar(f"{lo}-01-01", f"{hi}-12-31").schedule
        self.opens = _ns(schedule["open"])
        self.closes = _ns(schedule["close"])
        # No break: an empty one at the close.
        self.break_starts = _ns(schedule["break_start"].fillna(schedule["close"]))
        self.break_ends = _ns(schedule["break_end"].fillna(schedule["close"]))
        self._years = (lo, hi)


def _year(ts_ns: int) -> int:
    return (_EPOCH + timedelta(microseconds=ts_ns // 1_000)).year


def _ns(column: Any) -> np.ndarray[Any, Any]:
    utc = column.dt.tz_convert("UTC").dt.tz_localize(None)
    return np.asarray(utc.to_numpy(dtype="datetime64[ns]").view(np.int64))


def _exchange_calendars() -> Any:
    try:
        import exchange_calendars
    except ImportError:
        raise UsageError(
            "--calendar needs exchange-calendars: pip install 'market-data-pipeline[calendars]'"
        ) from None
    return exchange_calendars
