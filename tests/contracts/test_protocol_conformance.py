"""Each project class implementing a Core protocol passes ``isinstance`` and really matches it.

``isinstance`` against Core's runtime-checkable protocols only checks that attributes exist, so each
class is also compared member by member (async where Core's is async, compatible parameters) and
exercised: the documented return (None) and the behaviour the protocol promises.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import pkgutil
import time
from collections.abc import AsyncIterator, Awaitable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

import market_data_pipeline
from market_data_contracts.conformance import conformance_problems, protocol_members
from market_data_contracts.surface import call_kind
from market_data_pipeline import core

from .conftest import project_attr
from .implementers import CORE_PROTOCOLS, IMPLEMENTERS, Implementer

if TYPE_CHECKING:
    # The suite looks classes up with project_attr (a missing one skips); these only type them.
    from market_data_pipeline.bus.base import FeedbackBus
    from market_data_pipeline.flow.rate_gate import RateGate
    from market_data_pipeline.runtime import Pipeline
    from market_data_pipeline.sinks.base import BarSink
    from market_data_pipeline.sources.base import TickSource

PARAMS = [
    pytest.param(
        i,
        id=i.test_id,
        marks=pytest.mark.core_contract(
            f"protocol {i.protocol.removesuffix('Protocol')} ({i.name})",
            f"market_data_core.protocols:{i.protocol.removesuffix('Protocol')}",
        ),
    )
    for i in IMPLEMENTERS
]


def _protocol(implementer: Implementer) -> Any:
    return getattr(core, implementer.protocol)


@pytest.mark.parametrize("implementer", PARAMS)
def test_members_match_core_signatures(implementer: Implementer) -> None:
    cls = project_attr(implementer.module, implementer.name)
    problems = conformance_problems(cls, _protocol(implementer))
    assert not problems, f"{implementer.name} vs Core {implementer.protocol}: {problems}"


@pytest.mark.parametrize("implementer", PARAMS)
def test_core_methods_documented_async_stay_async(implementer: Implementer) -> None:
    cls = project_attr(implementer.module, implementer.name)
    protocol = _protocol(implementer)
    for name in protocol_members(protocol):
        theirs = inspect.getattr_static(protocol, name)
        if callable(theirs) and call_kind(theirs) != "call":
            assert call_kind(getattr(cls, name)) != "call", f"{name}: Core's is async"


def test_the_conformance_check_catches_what_isinstance_misses() -> None:
    # A synchronous ``apply`` passes Core's isinstance; the signature check must reject it.
    class SyncGate:
        def apply(self, adj: Any) -> None:
            return None

    assert isinstance(SyncGate(), core.RateControllerProtocol)
    assert conformance_problems(SyncGate, core.RateControllerProtocol)


def _package_classes() -> list[type]:
    found: dict[str, type] = {}
    for info in pkgutil.walk_packages(market_data_pipeline.__path__, "market_data_pipeline."):
        if ".cli" in info.name or ".contracts" in info.name:
            continue
        try:
            module = importlib.import_module(info.name)
        except ModuleNotFoundError as exc:
            # A module of an extra this environment lacks (a matrix cell has no FastAPI for
            # ``serve.app``); a missing module of the package itself is a real failure.
            if (exc.name or "").startswith("market_data_pipeline"):
                raise
            continue
        for value in vars(module).values():
            if inspect.isclass(value) and value.__module__ == module.__name__:
                found[f"{value.__module__}.{value.__qualname__}"] = value
    return list(found.values())


def test_every_implementer_is_registered() -> None:
    registered = {(f"market_data_pipeline.{i.module}", i.name) for i in IMPLEMENTERS}
    missing = []
    for cls in _package_classes():
        if getattr(cls, "_is_protocol", False) or inspect.isabstract(cls):
            continue
        for name in CORE_PROTOCOLS:
            protocol = getattr(core, name)
            matches = all(hasattr(cls, member) for member in protocol_members(protocol))
            if matches and (cls.__module__, cls.__name__) not in registered:
                missing.append(f"{cls.__module__}.{cls.__name__} ({name})")
    assert not missing, f"add to tests/contracts/implementers.py: {missing}"


# -- behaviour ---------------------------------------------------------------------------------


async def _returns_none(call: Awaitable[object]) -> bool:
    """Await ``call`` and say whether it returned None, as Core's protocols document."""
    return (await call) is None


def _adjustment(provider: str, scale: float, level: str) -> core.RateAdjustment:
    reason = core.BackpressureLevel(level)
    return core.RateAdjustment(provider=provider, scale=scale, reason=reason, ts=time.time())


async def test_rate_gate_behaves_as_a_rate_controller() -> None:
    gate_cls = project_attr("flow.rate_gate", "RateGate")
    gate: RateGate = gate_cls("synthetic", 1000.0)
    assert isinstance(gate, core.RateControllerProtocol)
    assert await _returns_none(gate.apply(_adjustment("synthetic", 0.5, "soft")))
    assert (gate.scale, gate.level) == (0.5, core.BackpressureLevel.soft)
    await gate.apply(_adjustment("synthetic", 0.0, "hard"))
    waiter = asyncio.create_task(gate.acquire(1))
    for _ in range(5):
        await asyncio.sleep(0)
    assert not waiter.done(), "acquire must block while the gate is paused (scale 0)"
    await gate.apply(_adjustment("synthetic", 1.0, "ok"))
    await asyncio.wait_for(waiter, timeout=10)
    assert (gate.scale, gate.level) == (1.0, core.BackpressureLevel.ok)


def _feedback_event(level: str = "soft") -> core.FeedbackEvent:
    return core.FeedbackEvent(
        coordinator_id="store-1",
        queue_size=80,
        capacity=100,
        level=core.BackpressureLevel(level),
        ts=time.time(),
    )


async def _publish_and_receive(bus: FeedbackBus) -> None:
    assert isinstance(bus, core.FeedbackPublisherProtocol)
    event = _feedback_event()
    events = bus.subscribe()
    receiving = asyncio.ensure_future(anext(events))
    try:
        for _ in range(5):
            await asyncio.sleep(0)
        assert await _returns_none(bus.publish(event))
        received = await asyncio.wait_for(receiving, timeout=10)
        assert received == event and isinstance(received, core.FeedbackEvent)
        await events.aclose()  # end the subscription first, so close() finds nothing in flight
    finally:
        # When publish failed (a Core whose codec breaks), the subscription is still waiting:
        # close() ends it, and the wait for it is bounded, so a failure never holds the suite.
        await bus.close()
        await _settled(receiving)


async def _settled(task: asyncio.Future[Any]) -> None:
    """Wait (at most a few seconds) for ``task`` to end, whatever its outcome."""
    if not task.done():
        task.cancel()
    done, _ = await asyncio.wait({task}, timeout=5)
    for finished in done:
        if not finished.cancelled():
            finished.exception()  # retrieved: the failure that matters is the test's own


async def test_memory_bus_behaves_as_a_feedback_publisher() -> None:
    bus = project_attr("bus.memory", "InMemoryBus")()
    await _publish_and_receive(bus)


@pytest.mark.redis
async def test_redis_bus_behaves_as_a_feedback_publisher(
    redis_url: str, redis_namespace: str
) -> None:
    bus_cls = project_attr("bus.redis_streams", "RedisStreamBus")
    await _publish_and_receive(bus_cls(redis_url, namespace=redis_namespace, block_ms=100))


@pytest.mark.redis
async def test_fan_in_bus_behaves_as_a_feedback_publisher(
    redis_url: str, redis_namespace: str
) -> None:
    fan_in = project_attr("bus.fan_in", "FanInBus")
    bus_cls = project_attr("bus.redis_streams", "RedisStreamBus")
    members = [
        bus_cls(redis_url, stream_key=f"{redis_namespace}:{name}", block_ms=100)
        for name in ("a", "b")
    ]
    await _publish_and_receive(fan_in(members))


def _core_bars() -> list[core.Bar]:
    end = datetime(2024, 1, 2, 9, 31, tzinfo=UTC)
    return [
        core.Bar(
            symbol=s,
            ts=end,
            open=Decimal("10"),
            high=Decimal("12"),
            low=Decimal("9"),
            close=Decimal("11"),
            volume=Decimal("5"),
            resolution="1m",
        )
        for s in ("AAA", "BBB")
    ]


async def _write_and_read(url: str) -> None:
    sinks = importlib.import_module("market_data_pipeline.sinks")
    sink: BarSink = sinks.open_sink(url)
    assert isinstance(sink, core.SinkProtocol)
    await sink.open()
    bars = _core_bars()
    assert await _returns_none(sink.write(bars))
    assert await _returns_none(sink.flush())
    assert await _returns_none(sink.close())
    stored = sinks.read_bars(url)
    assert stored["symbol"].to_list() == ["AAA", "BBB"]
    assert stored["close"].to_list() == [11.0, 11.0]
    # Core's Bar.ts is the window END; the store keeps the window start.
    start_ns = int((bars[0].ts - timedelta(minutes=1)).timestamp()) * 1_000_000_000
    assert stored["ts_ns"].to_list() == [start_ns, start_ns]


async def test_sqlite_sink_behaves_as_a_core_sink(tmp_path: Path) -> None:
    project_attr("sinks.sqlite", "SqliteSink")
    await _write_and_read(f"sqlite:///{tmp_path / 'bars.db'}")


@pytest.mark.postgres
async def test_postgres_sink_behaves_as_a_core_sink(postgres_url: str) -> None:
    project_attr("sinks.postgres", "PostgresSink")
    await _write_and_read(postgres_url)


async def _first_items(stream: AsyncIterator[object], n: int) -> list[object]:
    items = []
    async for item in stream:
        items.append(item)
        if len(items) == n:
            break
    return items


async def test_sources_stream_core_models(source_factories: dict[str, Any]) -> None:
    models = (core.Trade, core.Quote, core.Bar)
    for name, make in source_factories.items():
        source: TickSource = make()
        assert isinstance(source, core.SourceProtocol), name
        items = await _first_items(source.stream(), 3)
        assert items and all(isinstance(item, models) for item in items), name
        assert await _returns_none(source.close())
        assert await _returns_none(source.close())  # closing twice is safe


async def test_pipeline_behaves_as_a_pipeline_runner(tmp_path: Path) -> None:
    build_pipeline = project_attr("runtime", "build_pipeline")
    settings_cls = project_attr("config", "RunSettings")
    url = f"sqlite:///{tmp_path / 'bars.db'}"
    settings = settings_cls(
        source="synthetic", symbol="AAA", seed=1, ticks=200, sink=url, resolution="1m"
    )
    pipeline: Pipeline = build_pipeline(settings)
    assert isinstance(pipeline, core.PipelineRunnerProtocol)
    assert pipeline.is_running() is False
    assert await _returns_none(pipeline.start())
    assert pipeline.is_running() is True
    assert await _returns_none(pipeline.run())  # returns when the input ends
    assert await _returns_none(pipeline.stop(drain=True))
    await pipeline.finish(commit=True)
    assert pipeline.is_running() is False
    stored = importlib.import_module("market_data_pipeline.sinks").read_bars(url)
    assert stored.height > 0
