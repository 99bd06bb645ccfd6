"""Pipeline side of backpressure: turn Core ``FeedbackEvent``s into ``RateAdjustment``s.

The handler keeps the latest level of every coordinator (store write queue). The effective level
is the most severe one among coordinators heard from within ``stale_after_s``; each provider's
scale is the policy's scale for that level, and a ``RateAdjustment`` reaches a gate only when its
scale changes.

Ordering is by the event's own ``ts`` per coordinator (a bus may redeliver or reorder), silence
by this process's clock (hosts' wall clocks may disagree). An event counts as heard when it was
sent: its age on arrival (our wall clock minus ``ts``; a negative age, from a sender clock ahead
of ours, counts as 0) is taken off, so a level expires ``stale_after_s`` after it was sent, and
an event already older than that on arrival (history replayed to a new consumer group) is
recorded as ``expired`` and changes nothing. An event more than ``max_skew_s`` (default
``DEFAULT_CLOCK_SKEW_S``, 5 s) ahead of our wall clock is recorded as ``future`` and changes
nothing either: accepted, its ``ts`` would become the coordinator's clock and every real event
after it would look stale (the Redis bus dead-letters such entries before they get here).
While the bus is unreachable the
``fallback`` decides: ``keep`` the current levels (no expiry while we cannot hear anyone),
or force ``ok`` or ``hard``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal, Protocol, TypedDict

from .. import metrics
from ..core import LEVEL_SEVERITY, BackpressureLevel, FeedbackEvent, RateAdjustment
from ..errors import UsageError

log = logging.getLogger(__name__)

Fallback = Literal["keep", "ok", "hard"]
FALLBACKS: tuple[Fallback, ...] = ("keep", "ok", "hard")
DEFAULT_STALE_AFTER_S = 10.0
DEFAULT_CLOCK_SKEW_S = 5.0  # how far ahead of ours a sender's clock may be
_LEVELS = (BackpressureLevel.ok, BackpressureLevel.soft, BackpressureLevel.hard)


class CoordinatorSummary(TypedDict):
    """The last word of one store's coordinator: its level, when, and whether it expired."""

    level: str
    ts: float
    expired: bool


class ProviderSummary(TypedDict):
    """One provider's gate: its scale now, how often it changed, seconds spent at each level."""

    scale: float | None  # None: no adjustment applied yet
    rate_changes: int
    seconds_at_level: dict[str, float]


class FeedbackSummary(TypedDict, total=False):
    """What the feedback loop did in a run (the report's ``feedback``; empty when none ran)."""

    level: str
    bus_connected: bool
    outcomes: dict[str, int]  # events by what became of them: applied, unchanged, expired, ...
    coordinators: dict[str, CoordinatorSummary]
    providers: dict[str, ProviderSummary]


class RateController(Protocol):
    """Core's ``RateController``: what the handler drives (the pipeline's ``RateGate``)."""

    async def apply(self, adj: RateAdjustment) -> None: ...


class FeedbackSource(Protocol):
    """The part of ``FeedbackBus`` the handler consumes."""

    @property
    def connected(self) -> bool: ...

    def on_state_change(self, listener: Callable[[bool], None]) -> None: ...

    def subscribe(self) -> AsyncIterator[FeedbackEvent]: ...


def _check_scale(name: str, value: float) -> float:
    if not (0.0 <= value <= 1.0):
        raise UsageError(f"scale for {name} must be within [0, 1], got {value}")
    return float(value)


@dataclass(frozen=True)
class ScalePolicy:
    """Rate scale per level (1 full rate, 0 paused), overridable per provider and level.

    ``ScalePolicy(soft=0.5, overrides={"ibkr": {"soft": 0.8}})``
    """

    ok: float = 1.0
    soft: float = 0.5
    hard: float = 0.0
    overrides: Mapping[str, Mapping[str, float]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for level in _LEVELS:
            _check_scale(level.value, getattr(self, level.value))
        for provider, scales in self.overrides.items():
            for name, value in scales.items():
                if name not in BackpressureLevel.__members__:
                    raise UsageError(f"unknown level {name!r} in the policy of {provider!r}")
                _check_scale(f"{provider}.{name}", value)

    def scale(self, provider: str, level: BackpressureLevel) -> float:
        """Return the scale ``provider`` runs at under ``level``."""
        override = self.overrides.get(provider, {}).get(level.value)
        return float(getattr(self, level.value)) if override is None else float(override)


@dataclass
class _Coordinator:
    level: BackpressureLevel
    ts: float
    heard_at: float
    expired: bool = False


class FeedbackHandler:
    """Apply the effective backpressure level to every provider's rate gate."""

    def __init__(
        self,
        gates: Mapping[str, RateController],
        policy: ScalePolicy | None = None,
        *,
        stale_after_s: float = DEFAULT_STALE_AFTER_S,
        fallback: Fallback = "keep",
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        max_skew_s: float = DEFAULT_CLOCK_SKEW_S,
    ) -> None:
        if fallback not in FALLBACKS:
            raise UsageError(f"fallback must be one of {', '.join(FALLBACKS)}, got {fallback!r}")
        if not stale_after_s > 0:
            raise UsageError(f"stale_after_s must be > 0, got {stale_after_s}")
        self._gates = dict(gates)
        self.policy = policy or ScalePolicy()
        self.stale_after_s = stale_after_s
        self.fallback: Fallback = fallback
        self._clock = clock
        self._wall_clock = wall_clock
        self.max_skew_s = max_skew_s
        self._coordinators: dict[str, _Coordinator] = {}
        self._scales: dict[str, float | None] = {
            p: getattr(g, "scale", None) for p, g in self._gates.items()
        }
        self._changes: Counter[str] = Counter()
        self._outcomes: Counter[str] = Counter()
        self._bus_connected = True
        self._level = BackpressureLevel.ok
        self._level_since = clock()
        self._time_at: dict[BackpressureLevel, float] = dict.fromkeys(_LEVELS, 0.0)
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()

    @property
    def level(self) -> BackpressureLevel:
        """Return the effective level last applied."""
        return self._level

    async def handle(self, event: object) -> str:
        """Take one FeedbackEvent (anything else is counted ``invalid``); return its outcome.

        Outcomes: ``applied`` (a gate's scale changed), ``unchanged`` (recorded, no scale
        changed), ``stale`` (older than the coordinator's last event), ``duplicate`` (same ts and
        level as the last one), ``expired`` (sent more than ``stale_after_s`` ago by our wall
        clock), ``future`` (sent more than ``max_skew_s`` ahead of our wall clock), ``invalid``
        (not a FeedbackEvent with a finite ts).
        """
        if not isinstance(event, FeedbackEvent) or not math.isfinite(event.ts):
            return self._count("unknown", "invalid")
        level = BackpressureLevel(event.level)
        ahead_s = event.ts - self._wall_clock()
        if ahead_s > self.max_skew_s:
            log.warning(
                "ignoring a %s event from %s dated %.1f s ahead of this host's clock",
                level.value,
                event.coordinator_id,
                ahead_s,
            )
            return self._count(level.value, "future")
        known = self._coordinators.get(event.coordinator_id)
        if known is not None and event.ts <= known.ts:
            same = event.ts == known.ts and level is known.level
            return self._count(level.value, "duplicate" if same else "stale")
        age = max(0.0, self._wall_clock() - event.ts)
        if age > self.stale_after_s:
            return self._count(level.value, "expired")
        if known is not None and known.expired:
            log.info("coordinator %s is heard from again", event.coordinator_id)
        heard_at = self._clock() - age
        self._coordinators[event.coordinator_id] = _Coordinator(level, event.ts, heard_at)
        changed = await self._apply()
        return self._count(level.value, "applied" if changed else "unchanged")

    def _count(self, level: str, outcome: str) -> str:
        self._outcomes[outcome] += 1
        metrics.FEEDBACK_EVENTS.labels(level=level, outcome=outcome).inc()
        return outcome

    async def tick(self) -> None:
        """Expire coordinators silent for longer than ``stale_after_s``; apply the result."""
        await self._apply()

    def set_bus_connected(self, connected: bool) -> None:
        """Record whether the bus is reachable (wire to ``FeedbackBus.on_state_change``)."""
        if connected == self._bus_connected:
            return
        self._bus_connected = connected
        if connected:
            # We could not hear anyone meanwhile: give every coordinator a fresh window.
            now = self._clock()
            for coordinator in self._coordinators.values():
                coordinator.heard_at = now
        self._wake.set()

    def _expire(self, now: float) -> None:
        if not self._bus_connected:
            return
        for name, coordinator in self._coordinators.items():
            silent = now - coordinator.heard_at
            if not coordinator.expired and silent > self.stale_after_s:
                coordinator.expired = True
                log.warning("coordinator %s silent for %.1fs: its level expires", name, silent)

    def _effective(self) -> BackpressureLevel:
        if not self._bus_connected and self.fallback != "keep":
            return BackpressureLevel(self.fallback)
        live = [c.level for c in self._coordinators.values() if not c.expired]
        return max(live, key=LEVEL_SEVERITY.__getitem__, default=BackpressureLevel.ok)

    async def _apply(self) -> bool:
        async with self._lock:
            now = self._clock()
            self._expire(now)
            level = self._effective()
            if level is not self._level:
                self._time_at[self._level] += now - self._level_since
                self._level, self._level_since = level, now
            changed = False
            for provider, gate in self._gates.items():
                changed |= await self._apply_one(provider, gate, level)
            return changed

    async def _apply_one(
        self, provider: str, gate: RateController, level: BackpressureLevel
    ) -> bool:
        metrics.BACKPRESSURE_LEVEL.labels(provider=provider).set(LEVEL_SEVERITY[level])
        scale = self.policy.scale(provider, level)
        if self._scales[provider] == scale:
            return False
        adj = RateAdjustment(provider=provider, scale=scale, reason=level, ts=time.time())
        try:
            await gate.apply(adj)
        except Exception:
            # One broken gate must not stop the loop for the others; the next event or tick
            # retries, since the recorded scale did not change.
            log.exception("rate gate %s rejected %s", provider, adj)
            return False
        self._scales[provider] = scale
        self._changes[provider] += 1
        metrics.RATE_SCALE.labels(provider=provider).set(scale)
        return True

    async def run(self, bus: FeedbackSource, *, tick_s: float | None = None) -> None:
        """Consume ``bus`` until it closes, checking expiry every ``tick_s`` meanwhile."""
        bus.on_state_change(self.set_bus_connected)
        self.set_bus_connected(bus.connected)
        interval = tick_s if tick_s is not None else min(1.0, self.stale_after_s / 4)
        ticker = asyncio.create_task(self._tick_loop(interval), name="feedback-expiry")
        try:
            async for event in bus.subscribe():
                await self.handle(event)
        finally:
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker

    async def _tick_loop(self, interval: float) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(interval):
                    await self._wake.wait()
            self._wake.clear()
            await self.tick()

    def summary(self) -> FeedbackSummary:
        """Return levels, per-provider scale, rate changes and seconds at each level."""
        now = self._clock()
        seconds = dict(self._time_at)
        seconds[self._level] += now - self._level_since
        return {
            "level": self._level.value,
            "bus_connected": self._bus_connected,
            "outcomes": dict(self._outcomes),
            "coordinators": {
                name: {"level": c.level.value, "ts": c.ts, "expired": c.expired}
                for name, c in self._coordinators.items()
            },
            "providers": {
                provider: {
                    "scale": self._scales[provider],
                    "rate_changes": self._changes[provider],
                    "seconds_at_level": {lv.value: round(seconds[lv], 6) for lv in _LEVELS},
                }
                for provider in self._gates
            },
        }
