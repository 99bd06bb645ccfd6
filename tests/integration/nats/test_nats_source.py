"""The JetStream source against the real server: bodies, dead letters, checkpoints, partitions."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from subprocess import PIPE, Popen
from typing import Any

import nats
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from market_data_pipeline.config import RunSettings
from market_data_pipeline.publish import publish_source
from market_data_pipeline.runtime import execute
from market_data_pipeline.sinks import read_bars
from market_data_pipeline.sources.nats.bodies import encode_arrow
from market_data_pipeline.sources.synthetic import SyntheticSource

START_NS = 1_704_186_000 * 1_000_000_000  # 2024-01-02T09:00:00Z
SYMBOLS = ["AAA", "BBB", "CCC", "DDD", "BRK.B"]


def _ticks(n: int) -> SyntheticSource:
    return SyntheticSource(symbols=SYMBOLS, ticks=n, seed=7, start_ns=START_NS)


def _prefix(stream: str) -> str:
    # Stream subjects are global to the account: each test publishes under its own prefix.
    return stream.lower()


async def _publish(url: str, stream: str, n: int, **options: Any) -> None:
    prefix = _prefix(stream)
    await publish_source(_ticks(n).batches(), url=url, stream=stream, prefix=prefix, **options)


def _settings(sink: str, **values: Any) -> RunSettings:
    return RunSettings.model_validate(
        {"sink": sink, "resolution": "1s,1m", "idle_timeout": 1.0, **values}
    )


async def _reference(tmp_path: Path, n: int) -> pl.DataFrame:
    """Bars of the same ticks built straight from the generator (no bus)."""
    sink = f"sqlite:///{tmp_path / 'reference.db'}"
    settings = RunSettings.model_validate(
        {
            "sink": sink,
            "resolution": "1s,1m",
            "ticks": n,
            "seed": 7,
            "symbols": SYMBOLS,
            "start": "2024-01-02T09:00:00Z",
        }
    )
    report = await execute(settings)
    assert report.exit_code == 0, report.error
    return read_bars(sink)


def _same_bars(got: pl.DataFrame, want: pl.DataFrame) -> None:
    # Exact but for vwap, whose float sum depends on how ticks were batched.
    assert_frame_equal(got.drop("vwap"), want.drop("vwap"))
    assert_frame_equal(got.select("vwap"), want.select("vwap"), check_exact=False, rel_tol=1e-12)


@pytest.mark.parametrize(
    ("body", "batch_ticks"), [("arrow", 500), ("json", 50), ("json", 1), ("pulse", 1)]
)
async def test_every_body_gives_the_bars_of_the_ticks_published(
    nats_url: str, stream_name: str, tmp_path: Path, body: str, batch_ticks: int
) -> None:
    n = 3_000 if batch_ticks == 1 else 20_000
    await _publish(nats_url, stream_name, n, body=body, batch_ticks=batch_ticks)
    sink = f"sqlite:///{tmp_path / 'nats.db'}"
    report = await execute(_settings(sink, source="nats", stream=stream_name))
    assert report.exit_code == 0, report.error
    assert report.reconciled
    assert report.ticks_admitted == n
    _same_bars(read_bars(sink), await _reference(tmp_path, n))


async def test_poison_messages_go_to_the_dead_letter_stream_with_a_reason(
    nats_url: str, stream_name: str, tmp_path: Path
) -> None:
    await _publish(nats_url, stream_name, 2_000)
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    await js.publish(f"{_prefix(stream_name)}.X", b"not a tick")
    await js.publish(
        f"{_prefix(stream_name)}.X", b'{"symbol": "X", "price": "-3", "size": 1, "ts": 1}'
    )
    await js.publish(
        f"{_prefix(stream_name)}.X",
        b'[{"symbol": "X", "bid": 1.0, "timestamp": "2024-01-02T09:00:00Z"}]',
    )
    await _publish(nats_url, stream_name, 2_000)  # the consumer keeps going after them
    sink = f"sqlite:///{tmp_path / 'nats.db'}"
    report = await execute(_settings(sink, source="nats", stream=stream_name))
    assert report.exit_code == 0, report.error
    assert report.ticks_admitted == 4_000
    assert report.bad_reasons == {
        "dead-lettered: unknown body": 1,
        "dead-lettered: bad price": 1,
        "dead-lettered: no bid/ask": 1,
    }
    assert report.source["dead_lettered"] == 3
    sub = await js.pull_subscribe(
        f"mdp.dlq.{stream_name}", durable="t", stream=f"{stream_name}_DLQ"
    )
    letters = await sub.fetch(3, timeout=5)
    headers = [m.headers or {} for m in letters]  # every dead letter carries headers
    reasons = [h["Mdp-Dlq-Reason"] for h in headers]
    assert reasons[0].startswith("unknown body")
    assert reasons[1] == "bad price: row 0, field price: '-3'"
    assert next(m.data for m in letters) == b"not a tick"
    assert {h["Mdp-Dlq-Subject"] for h in headers} == {f"{_prefix(stream_name)}.X"}
    await nc.close()


async def test_a_second_run_resumes_after_the_checkpoint_and_takes_only_new_messages(
    nats_url: str, stream_name: str, tmp_path: Path
) -> None:
    sink = f"sqlite:///{tmp_path / 'nats.db'}"
    await _publish(nats_url, stream_name, 10_000)
    first = await execute(_settings(sink, source="nats", stream=stream_name))
    assert first.ticks_admitted == 10_000
    second = await execute(_settings(sink, source="nats", stream=stream_name))
    assert second.exit_code == 0 and second.reconciled
    assert second.ticks_admitted == 0
    assert second.source["messages"] == 0


async def test_deliveries_that_never_arrive_are_taken_again_not_acknowledged(
    nats_url: str, stream_name: str
) -> None:
    """Another fetcher on the same durable makes the worker's delivery numbers jump: the
    worker must rebind and take those messages itself instead of acknowledging past them."""
    from market_data_pipeline.sources.nats.source import NatsSource

    await _publish(nats_url, stream_name, 20_000, batch_ticks=500)  # 40 messages
    source = NatsSource(url=nats_url, stream=stream_name, durable="w", fetch_batch=5,
                        idle_timeout_s=1.0)  # fmt: skip
    nc = await nats.connect(nats_url)
    ticks = 0
    try:
        async for frame in source.batches():
            ticks += frame.height
            if source.messages == 5:  # after the first batch: steal the next three deliveries
                thief = await nc.jetstream().pull_subscribe_bind("w", stream_name)
                stolen = await thief.fetch(3, timeout=5)
                assert len(stolen) == 3
            await source.acknowledge(source.position)
    finally:
        await source.close()
        await nc.close()
    assert ticks == 20_000
    assert source.gaps == 1


async def test_deliveries_lost_right_after_a_resume_are_taken_again(
    nats_url: str, stream_name: str
) -> None:
    """A resumed worker recreates its consumer, which numbers deliveries from 1: when the first
    ones never arrive, the first message it sees is already a jump."""
    from market_data_pipeline.sources.nats.source import NatsSource

    await _publish(nats_url, stream_name, 20_000, batch_ticks=500)  # 40 messages
    source = NatsSource(url=nats_url, stream=stream_name, durable="w", fetch_batch=5,
                        idle_timeout_s=1.0)  # fmt: skip
    source.resume_after(10)  # a checkpoint after the tenth message
    nc = await nats.connect(nats_url)
    bind = source._bind
    stolen: list[Any] = []

    async def bind_then_lose_the_first_deliveries() -> None:
        await bind()
        if not stolen:  # the first bind only: another fetcher takes deliveries 1-3
            thief = await nc.jetstream().pull_subscribe_bind("w", stream_name)
            stolen.extend(await thief.fetch(3, timeout=5))

    source._bind = bind_then_lose_the_first_deliveries  # type: ignore[method-assign]
    ticks = 0
    try:
        async for frame in source.batches():
            ticks += frame.height
            await source.acknowledge(source.position)
    finally:
        await source.close()
        await nc.close()
    assert len(stolen) == 3
    assert source.gaps == 1
    # Every tick after the checkpoint, the three lost messages' too: as a worker that lost none.
    intact = NatsSource(url=nats_url, stream=stream_name, durable="intact", idle_timeout_s=1.0)
    intact.resume_after(10)
    try:
        assert ticks == sum([frame.height async for frame in intact.batches()])
    finally:
        await intact.close()


async def _consumer_past(js: Any, stream: str, field: str, seq: int) -> int:
    """Wait until consumer ``w``'s ``field`` (delivered, ack_floor) reaches stream seq ``seq``
    (acks are asynchronous); return that stream seq."""
    for _ in range(1_000):
        info = await js.consumer_info(stream, "w")
        got = int(getattr(info, field).stream_seq)
        if got >= seq:
            return got
        await asyncio.sleep(0.01)
    raise AssertionError(f"consumer {field} stayed at {got}, below {seq}")


async def test_the_position_and_acks_cover_the_frames_handed_out_not_the_batches_read_ahead(
    nats_url: str, stream_name: str
) -> None:
    """The reader fetches the next batches while the caller handles a frame; a checkpoint taken
    then must not cover them: their ticks are in no bar yet."""
    from market_data_pipeline.sources.nats.source import READ_AHEAD, NatsSource

    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    await js.add_stream(name=stream_name, subjects=[f"{_prefix(stream_name)}.>"])
    for seq in range(1, 11):  # ten messages of 500 ticks: stream seq 1-10
        ts = [START_NS + (seq * 500 + i) * 1_000_000 for i in range(500)]
        ticks = pl.DataFrame({"symbol": "T", "ts_ns": ts, "price": 1.0, "size": 1.0})
        await js.publish(f"{_prefix(stream_name)}.T", encode_arrow(ticks))
    source = NatsSource(url=nats_url, stream=stream_name, durable="w", fetch_batch=2,
                        idle_timeout_s=1.0)  # fmt: skip
    seen = 0
    try:
        async for frame in source.batches():
            seen += frame.height
            position = source.position
            assert position == seen // 500  # the last message of the frames handed out
            if position < 10:  # the reader fetched ahead meanwhile, READ_AHEAD batches at most
                delivered = await _consumer_past(js, stream_name, "delivered", position + 1)
                assert delivered <= min(10, position + 2 * READ_AHEAD)
            await source.acknowledge(position)
            assert await _consumer_past(js, stream_name, "ack_floor", position) == position
    finally:
        await source.close()
        await nc.close()
    assert seen == 5_000


async def test_a_checkpoint_of_other_resolutions_is_refused(
    nats_url: str, stream_name: str, tmp_path: Path
) -> None:
    sink = f"sqlite:///{tmp_path / 'nats.db'}"
    await _publish(nats_url, stream_name, 1_000)
    await execute(_settings(sink, source="nats", stream=stream_name))
    report = await execute(_settings(sink, source="nats", stream=stream_name, resolution="5m"))
    assert report.exit_code == 2
    assert "same --resolution and --grace" in (report.error or "")


async def test_a_missing_stream_is_one_usage_line(nats_url: str, tmp_path: Path) -> None:
    sink = f"sqlite:///{tmp_path / 'nats.db'}"
    report = await execute(_settings(sink, source="nats", stream="MDPTEST_NO_SUCH_STREAM"))
    assert report.exit_code == 2
    assert report.error == (
        f"no stream 'MDPTEST_NO_SUCH_STREAM' on {nats_url}: create it with "
        "mdp publish --stream MDPTEST_NO_SUCH_STREAM"
    )


async def test_an_unreachable_server_is_one_line(tmp_path: Path) -> None:
    sink = f"sqlite:///{tmp_path / 'nats.db'}"
    settings = _settings(sink, source="nats", stream="S", nats_url="nats://127.0.0.1:1")
    report = await execute(settings)
    assert report.exit_code == 1
    assert (report.error or "").startswith("cannot connect to NATS at nats://127.0.0.1:1")


def _worker(url: str, stream: str, sink: str, partition: int, *extra: str) -> Popen[str]:
    """One partitioned worker: its own ``mdp run --source nats`` process."""
    args = [
        sys.executable, "-m", "market_data_pipeline.cli", "run", "--source", "nats",
        "--nats-url", url, "--stream", stream, "--subject", f"{_prefix(stream)}.{partition}.>",
        "--durable", f"worker-{partition}", "--sink", sink, "--resolution", "1s,1m",
        "--idle-timeout", "2", "--json", *extra,
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("MDP_")}
    return Popen(args, stdout=PIPE, stderr=PIPE, text=True, env=env)


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.slow
@pytest.mark.parametrize("workers", [2, 4])
async def test_partitioned_worker_processes_write_the_bars_of_one_worker(
    nats_url: str,
    stream_name: str,
    tmp_path: Path,
    postgres_url: str,
    redis_url: str,
    redis_namespace: str,
    workers: int,
) -> None:
    """N ``mdp run`` processes, one per partition, into one PostgreSQL, each on the Redis bus."""
    n = 20_000
    await _publish(nats_url, stream_name, n, partitions=workers)
    from market_data_pipeline.sinks import open_sink

    setup = open_sink(postgres_url, transactional=True)  # tables first: no catalog race
    await setup.open()
    await setup.close()
    bus = ("--bus", redis_url, "--namespace", redis_namespace)
    procs = [
        _worker(nats_url, stream_name, postgres_url, p, *bus, "--group", f"worker-{p}")
        for p in range(workers)
    ]
    outputs = await asyncio.gather(*(asyncio.to_thread(p.communicate, None, 120) for p in procs))
    reports = [json.loads(out) for out, _err in outputs]
    assert all(p.returncode == 0 for p in procs), [r["error"] for r in reports]
    assert all(r["reconciled"] for r in reports)
    assert all(r["ticks_admitted"] > 0 for r in reports)  # every partition had symbols
    assert sum(r["ticks_admitted"] for r in reports) == n
    _same_bars(read_bars(postgres_url), await _reference(tmp_path, n))
