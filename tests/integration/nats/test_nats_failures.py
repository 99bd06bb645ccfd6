"""What a NATS run does when it cannot finish: a dead letter that cannot be written, a stream
that is not there. Nothing taken is lost: the next run takes it again."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import nats
import nats.js.api as api
import pytest

from market_data_pipeline.config import RunSettings
from market_data_pipeline.publish import publish_source
from market_data_pipeline.runtime import execute
from market_data_pipeline.sinks import read_bars
from market_data_pipeline.sources.nats import source as nats_source
from market_data_pipeline.sources.synthetic import SyntheticSource

START_NS = 1_704_186_000 * 1_000_000_000  # 2024-01-02T09:00:00Z
POISON = b"{" + b"x" * 2_000  # no JSON: dead-lettered, 2 kB


def _settings(sink: str, stream: str, **values: Any) -> RunSettings:
    return RunSettings.model_validate(
        {"sink": sink, "resolution": "1m", "idle_timeout": 1.0, "source": "nats"}
        | {"stream": stream, **values}
    )


async def _publish_with_poison(url: str, stream: str) -> None:
    """1,000 ticks, one poison message, 1,000 ticks ten minutes later."""
    prefix = stream.lower()
    for start in (START_NS, START_NS + 600 * 10**9):
        ticks = SyntheticSource(symbols=["AAA", "BBB"], ticks=1_000, seed=3, start_ns=start)
        await publish_source(ticks.batches(), url=url, stream=stream, prefix=prefix)
        if start == START_NS:
            nc = await nats.connect(url)
            await nc.jetstream().publish(f"{prefix}.PZN", POISON, headers={"Trace": "p1"})
            await nc.close()


async def _reference(tmp_path: Path, url: str) -> Any:
    """The bars of the same messages on a stream whose dead letters go through."""
    stream = f"{tmp_path.name[:20].upper()}_REF"
    await _publish_with_poison(url, stream)
    sink = f"sqlite:///{tmp_path / 'reference.db'}"
    try:
        report = await execute(_settings(sink, stream))
    finally:
        nc = await nats.connect(url)
        for name in (stream, f"{stream}_DLQ"):
            await nc.jetstream().delete_stream(name)
        await nc.close()
    assert report.exit_code == 0 and report.source["dead_lettered"] == 1, report.error
    return read_bars(sink)


async def _dlq_letters(url: str, stream: str) -> list[Any]:
    nc = await nats.connect(url)
    try:
        sub = await nc.jetstream().pull_subscribe(
            f"mdp.dlq.{stream}", durable="t", stream=f"{stream}_DLQ"
        )
        return list(await sub.fetch(10, timeout=2))
    finally:
        await nc.close()


async def test_a_dead_letter_too_large_for_its_stream_stops_the_run_before_it(
    nats_url: str, stream_name: str, tmp_path: Path
) -> None:
    await _publish_with_poison(nats_url, stream_name)
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    dlq = api.StreamConfig(
        name=f"{stream_name}_DLQ", subjects=[f"mdp.dlq.{stream_name}"], max_msg_size=1_000
    )
    await js.add_stream(dlq)
    sink = f"sqlite:///{tmp_path / 'nats.db'}"
    first = await execute(_settings(sink, stream_name))
    assert first.exit_code == 1
    assert "cannot dead-letter message 3" in (first.error or "")
    again = await execute(_settings(sink, stream_name))  # still too large: stops again
    assert again.exit_code == 1 and again.ticks_read == 0
    dlq.max_msg_size = -1
    await js.update_stream(dlq)
    await nc.close()
    last = await execute(_settings(sink, stream_name))
    assert last.exit_code == 0, last.error
    assert last.source["dead_lettered"] == 1
    assert first.ticks_read + last.ticks_read == 2_001  # and the poison
    assert read_bars(sink).equals(await _reference(tmp_path, nats_url))
    [letter] = await _dlq_letters(nats_url, stream_name)
    assert letter.data == POISON and (letter.headers or {})["Trace"] == "p1"


async def test_a_missing_dead_letter_stream_stops_the_run_and_the_next_run_retries(
    nats_url: str, stream_name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _publish_with_poison(nats_url, stream_name)
    sink = f"sqlite:///{tmp_path / 'nats.db'}"

    async def deleted_meanwhile(js: Any, stream: str, subject: str) -> None:
        return None  # as if the dead-letter stream were deleted after the start

    with monkeypatch.context() as patch:
        patch.setattr(nats_source, "ensure_dlq_stream", deleted_meanwhile)
        first = await execute(_settings(sink, stream_name))
    assert first.exit_code == 1
    assert "cannot dead-letter message 3 " in (first.error or "")
    last = await execute(_settings(sink, stream_name))
    assert last.exit_code == 0, last.error
    assert first.ticks_read + last.ticks_read == 2_001  # and the poison
    assert read_bars(sink).equals(await _reference(tmp_path, nats_url))


async def test_a_run_that_never_started_leaves_no_checkpoint_to_refuse_the_next(
    nats_url: str, stream_name: str, tmp_path: Path
) -> None:
    sink = f"sqlite:///{tmp_path / 'nats.db'}"
    missing = await execute(_settings(sink, stream_name, resolution="1s"))
    assert missing.exit_code == 2 and "no stream" in (missing.error or "")
    await _publish_with_poison(nats_url, stream_name)
    report = await execute(_settings(sink, stream_name, resolution="5m"))
    assert report.exit_code == 0, report.error
    assert report.ticks_admitted == 2_000


async def test_a_token_in_the_nats_url_is_never_shown(tmp_path: Path) -> None:
    sink = f"sqlite:///{tmp_path / 'nats.db'}"
    url = "nats://SECRETTOKEN123@127.0.0.1:1"
    report = await execute(_settings(sink, "S", nats_url=url))
    assert report.exit_code == 1
    assert "SECRETTOKEN123" not in json.dumps(report.as_dict())
    assert report.source["url"] == "nats://***@127.0.0.1:1"
    assert "nats://***@127.0.0.1:1" in (report.error or "")
