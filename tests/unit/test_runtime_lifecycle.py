"""A pipeline is built, then run once: its state only moves forward and use after close raises."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from market_data_pipeline.build import build_source, build_stages
from market_data_pipeline.config import RunSettings
from market_data_pipeline.errors import PipelineStateError, UsageError
from market_data_pipeline.lifecycle import Lifecycle
from market_data_pipeline.report import RunStatus, StopCause
from market_data_pipeline.runtime import Pipeline, build_pipeline, execute
from market_data_pipeline.sinks import read_bars
from market_data_pipeline.sinks.memory import MemorySink


def _settings(**options: object) -> RunSettings:
    name = f"memory://lifecycle-{uuid.uuid4().hex[:8]}"
    return RunSettings.model_validate({"ticks": 300, "resolution": "1m", "sink": name} | options)


async def test_the_state_moves_forward_from_created_to_closed() -> None:
    pipeline = build_pipeline(_settings())
    seen: list[Lifecycle] = [pipeline.state]
    async with pipeline:
        report = await pipeline.execute(on_start=lambda p: seen.append(p.state))
    seen.append(pipeline.state)
    assert seen == [Lifecycle.CREATED, Lifecycle.RUNNING, Lifecycle.CLOSED]
    assert report.status is RunStatus.OK and report.stopped_by is StopCause.END_OF_INPUT
    assert report.reconciled and report.bars_written > 0
    assert not pipeline.is_running()


async def test_a_closed_pipeline_refuses_every_further_use() -> None:
    pipeline = build_pipeline(_settings())
    async with pipeline:
        await pipeline.execute()
    with pytest.raises(PipelineStateError, match="closed pipeline cannot be started"):
        await pipeline.start()
    with pytest.raises(PipelineStateError, match="closed pipeline cannot be run"):
        await pipeline.run()
    with pytest.raises(PipelineStateError, match="closed pipeline cannot be finished"):
        await pipeline.finish(commit=True)
    with pytest.raises(PipelineStateError, match="closed pipeline cannot be entered"):
        async with pipeline:
            pass


async def test_a_started_pipeline_cannot_be_started_again() -> None:
    async with build_pipeline(_settings()) as pipeline:
        await pipeline.start()
        with pytest.raises(PipelineStateError, match="running pipeline cannot be started"):
            await pipeline.start()


async def test_leaving_the_block_early_rolls_back_and_closes_every_part(tmp_path: Path) -> None:
    csv = tmp_path / "trades.csv"
    csv.write_text("symbol,ts,price,size\nA,1704186000000,1.0,1\nA,1704186061000,1.5,2\n")
    db = tmp_path / "bars.db"
    pipeline = build_pipeline(_settings(ticks=None, input=(str(csv),), sink=f"sqlite:///{db}"))
    with pytest.raises(RuntimeError, match="the caller failed"):
        async with pipeline:
            await pipeline.run()
            raise RuntimeError("the caller failed")
    assert pipeline.state is Lifecycle.CLOSED
    assert pipeline.queue.report is not None and not pipeline.queue.report.committed
    assert read_bars(f"sqlite:///{db}").height == 0  # the replay's transaction rolled back


async def test_leaving_the_block_unused_closes_it() -> None:
    async with build_pipeline(_settings()) as pipeline:
        inside = pipeline.state
    assert (inside, pipeline.state) == (Lifecycle.CREATED, Lifecycle.CLOSED)


async def test_a_pipeline_takes_its_stages_directly() -> None:
    """A test (or an embedding) gives one part of its own: here the sink."""
    settings = _settings()
    name = f"lifecycle-own-{uuid.uuid4().hex[:8]}"
    own = MemorySink(name)
    stages = build_stages(settings, build_source(settings), sink=own)
    assert stages.sink is own
    async with Pipeline(settings, stages) as pipeline:
        report = await pipeline.execute()
    assert report.reconciled and report.sink == own.describe()
    assert read_bars(f"memory://{name}").height == report.bars_written > 0


async def test_settings_that_cannot_make_a_run_fail_the_build() -> None:
    with pytest.raises(UsageError, match="--fill-gaps needs --calendar"):
        build_pipeline(_settings(fill_gaps=True))
    report = await execute(_settings(fill_gaps=True))
    assert report.status is RunStatus.BAD_INPUT and isinstance(report.failure, UsageError)
    assert report.stopped_by is StopCause.ERROR
