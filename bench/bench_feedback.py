"""Benchmark the backpressure loop: watermark crossing to rate change, and Redis consume rate.

Run: ``.venv/bin/python bench/bench_feedback.py [--transitions N] [--entries N] [--redis URL]``.

Latency: from the ``WatermarkMonitor.observe()`` call that crosses a mark to the moment the
``RateGate`` reports the new scale, through the whole loop (monitor task, bus, handler, gate),
p50/p99 over N transitions (alternating ok/hard, dwell 0, 2 ms apart). The CPU time of the
thread over the same span is printed too: on a busy machine the wall p99 shows scheduler
preemption, the CPU p99 the loop's own work. Baseline in the same run: a direct
``gate.apply()`` of a prepared adjustment (in-process) and one XADD round trip (Redis).
Floors: p99 <= 1 ms in-process, <= 10 ms over Redis on loopback.

Throughput: entries consumed per second by ``RedisStreamBus.subscribe()`` including decode,
validation, de-duplication and acknowledgement; baseline (the ceiling): raw XREADGROUP of 100
entries + one XACK per batch, without decoding, the same batch size the bus uses.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis

from market_data_pipeline.bus import open_bus
from market_data_pipeline.bus.base import FeedbackBus
from market_data_pipeline.bus.pulse import encode_event
from market_data_pipeline.bus.redis_streams import RedisStreamBus
from market_data_pipeline.core import BackpressureLevel, FeedbackEvent, RateAdjustment
from market_data_pipeline.flow.feedback import FeedbackHandler
from market_data_pipeline.flow.rate_gate import RateGate
from market_data_pipeline.flow.watermarks import WatermarkMonitor, Watermarks

CAPACITY = 1000
SPACING_S = 0.002
FLOOR_MS = {"memory": 1.0, "redis": 10.0}


class TimedGate:
    """Forward to a RateGate; note when its scale actually changed."""

    def __init__(self, gate: RateGate) -> None:
        self.gate = gate
        self.changed_ns = 0
        self.changed_cpu_ns = 0
        self.changed = asyncio.Event()

    async def apply(self, adj: Any) -> None:
        before = self.gate.scale
        await self.gate.apply(adj)
        if self.gate.scale != before:
            self.changed_ns = time.perf_counter_ns()
            self.changed_cpu_ns = time.thread_time_ns()
            self.changed.set()


def percentiles(samples_ns: list[int]) -> tuple[float, float]:
    """Return (p50, p99) in milliseconds."""
    ordered = sorted(samples_ns)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return statistics.median(ordered) / 1e6, p99 / 1e6


async def loop_latency(bus: FeedbackBus, transitions: int) -> tuple[list[int], list[int]]:
    """Return ns from observe() to the gate's scale change per transition: wall, and CPU time.

    The CPU time of this thread over the same span is the work the loop did; a wall time far
    above it is time the process was not running (a busy machine), not time spent in the loop.
    """
    timed = TimedGate(RateGate("bench", None))
    handler = FeedbackHandler({"bench": timed})
    runner = asyncio.create_task(handler.run(bus))
    monitor = WatermarkMonitor(
        bus, coordinator_id="bench", watermarks=Watermarks(dwell_s=0.0), heartbeat_s=None
    )
    await monitor.start()
    samples, cpu = [], []
    for i in range(transitions + 20):  # the first 20 warm up connections and caches
        timed.changed.clear()
        depth = CAPACITY if i % 2 == 0 else 0
        start, start_cpu = time.perf_counter_ns(), time.thread_time_ns()
        monitor.observe(depth, CAPACITY)
        async with asyncio.timeout(5):
            await timed.changed.wait()
        if i >= 20:
            samples.append(timed.changed_ns - start)
            cpu.append(timed.changed_cpu_ns - start_cpu)
    await monitor.aclose()
    await bus.close()
    await runner
    return samples, cpu


async def repeat_ns(n: int, call: Callable[[int], Awaitable[Any]]) -> list[int]:
    samples = []
    for i in range(n):
        start = time.perf_counter_ns()
        await call(i)
        samples.append(time.perf_counter_ns() - start)
    return samples


async def direct_apply(n: int) -> list[int]:
    gate = RateGate("bench", None)
    adjs = [
        RateAdjustment(provider="bench", scale=s, reason=lv, ts=time.time())
        for s, lv in ((0.0, BackpressureLevel.hard), (1.0, BackpressureLevel.ok))
    ]
    return await repeat_ns(n, lambda i: gate.apply(adjs[i % 2]))


async def xadd_round_trip(url: str, n: int) -> list[int]:
    client = aioredis.Redis.from_url(url)
    key = f"bench-{uuid.uuid4().hex[:8]}:rtt"
    try:
        return await repeat_ns(n, lambda i: client.xadd(key, {"data": b"x"}))
    finally:
        await client.delete(key)
        await client.aclose()


async def fill(url: str, key: str, entries: int) -> None:
    client = aioredis.Redis.from_url(url)
    pipe = client.pipeline(transaction=False)
    now = time.time()
    for i in range(entries):
        level = ("ok", "soft", "hard")[i % 3]
        event = FeedbackEvent(
            coordinator_id=f"store-{i % 4}",
            queue_size=i % 100,
            capacity=100,
            level=BackpressureLevel(level),
            ts=now + i * 1e-6,
        )
        pipe.xadd(key, {"data": encode_event(event)})
        if i % 1000 == 999:
            await pipe.execute()
    await pipe.execute()
    await client.aclose()


async def consume_rate(url: str, entries: int) -> float:
    namespace = f"bench-{uuid.uuid4().hex[:8]}"
    bus = RedisStreamBus(url, namespace=namespace)
    await fill(url, bus.key, entries)
    seen = 0
    start = time.perf_counter()
    async for _ in bus.subscribe():
        seen += 1
        if seen == entries:
            break
    elapsed = time.perf_counter() - start
    await cleanup(url, namespace)
    await bus.close()
    return entries / elapsed


async def raw_consume_rate(url: str, entries: int) -> float:
    namespace = f"bench-{uuid.uuid4().hex[:8]}"
    key = f"{namespace}:telemetry.feedback"
    await fill(url, key, entries)
    client = aioredis.Redis.from_url(url)
    await client.xgroup_create(key, "raw", id="0")
    seen = 0
    start = time.perf_counter()
    while seen < entries:
        reply = await client.xreadgroup("raw", "c", {key: ">"}, count=100)
        ids = [entry_id for entry_id, _fields in reply[0][1]]
        await client.xack(key, "raw", *ids)
        seen += len(ids)
    elapsed = time.perf_counter() - start
    await client.aclose()
    await cleanup(url, namespace)
    return entries / elapsed


async def cleanup(url: str, namespace: str) -> None:
    client = aioredis.Redis.from_url(url)
    keys = [k async for k in client.scan_iter(match=f"{namespace}:*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


def report(
    name: str, measured: tuple[list[int], list[int]], baseline: list[int], floor_ms: float
) -> None:
    samples, cpu = measured
    p50, p99 = percentiles(samples)
    c50, c99 = percentiles(cpu)
    b50, b99 = percentiles(baseline)
    verdict = "ok" if p99 <= floor_ms else "ABOVE FLOOR"
    print(
        f"{name:<7} n={len(samples)}  wall p50 {p50:.3f} ms p99 {p99:.3f} ms "
        f"(floor p99 <= {floor_ms} ms: {verdict})  cpu p50 {c50:.3f} ms p99 {c99:.3f} ms  "
        f"baseline p50 {b50:.4f} ms p99 {b99:.4f} ms  ratio p50 x{p50 / b50:.1f}"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transitions", type=int, default=2000)
    parser.add_argument("--entries", type=int, default=20_000)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")

    print("feedback latency: observe() crossing a mark -> RateGate.scale changed")
    memory = await loop_latency(open_bus(None), args.transitions)
    report("memory", memory, await direct_apply(args.transitions), FLOOR_MS["memory"])
    namespace = f"bench-{uuid.uuid4().hex[:8]}"
    over_redis = await loop_latency(open_bus(args.redis, namespace=namespace), args.transitions)
    await cleanup(args.redis, namespace)
    report("redis", over_redis, await xadd_round_trip(args.redis, 1000), FLOOR_MS["redis"])

    print("redis consumer throughput (decode, validate, de-duplicate, ack)")
    rate = await consume_rate(args.redis, args.entries)
    raw = await raw_consume_rate(args.redis, args.entries)
    print(
        f"bus      {rate:10,.0f} events/s   raw XREADGROUP+XACK (no decode) {raw:10,.0f}/s   "
        f"ratio x{rate / raw:.2f}"
    )


if __name__ == "__main__":
    asyncio.run(main())
