"""The NATS worker under attack: dead letters that cannot be written, a server killed -9, signals
at random instants and fuzzed message bodies.

What holds, every trial: nothing taken is lost (after reruns the store holds exactly the bars of a
clean run of the valid messages, and every poison message was counted once as a dead letter), a
stop ends within a bound with a summary the store agrees with, and whatever a body holds it is a
bar, a counted dead letter or a one-line error: never a traceback, never a stream blocked at it.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import shutil
import signal
import sqlite3
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nats
import nats.js.api as api
import nats.js.errors
import polars as pl
import pytest
from nats_cluster import NATS_SERVER
from waiting import wait_until

from market_data_pipeline.cli.signals import EXIT_CODES
from market_data_pipeline.config import RunSettings
from market_data_pipeline.publish import publish_source
from market_data_pipeline.report import RunReport
from market_data_pipeline.runtime import execute
from market_data_pipeline.sinks import read_bars
from market_data_pipeline.sources.nats.bodies import encode_arrow
from market_data_pipeline.sources.synthetic import SyntheticSource

from .conftest import IN_CI, Scenario
from .nats_server import NatsServer
from .procs import handlers_installed, signal_when_ready, start_mdp, summary

pytestmark = pytest.mark.faults

START_NS = 1_704_186_000 * 1_000_000_000  # 2024-01-02T09:00:00Z
TICKS = 20_000
TICKS_PER_MESSAGE = 20
RUN_BOUND_S = 60.0  # a run that has not ended by then hangs: a failed trial


@pytest.fixture(scope="module")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    if shutil.which(NATS_SERVER) is None:
        message = f"{NATS_SERVER} is not installed"
        if IN_CI:
            pytest.fail(f"{message} (CI=true: the fault suite must run)")
        pytest.skip(message)
    server = NatsServer(tmp_path_factory.mktemp("nats"))
    server.start()
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture(scope="module")
def ticks() -> pl.DataFrame:
    source = SyntheticSource(symbols=["AAA", "BBB", "CCC"], ticks=TICKS, seed=21, start_ns=START_NS)

    async def collect() -> pl.DataFrame:
        return pl.concat([frame async for frame in source.batches()])

    return asyncio.run(collect())


def _bodies(ticks: pl.DataFrame) -> list[bytes]:
    return [
        encode_arrow(ticks.slice(start, TICKS_PER_MESSAGE))
        for start in range(0, ticks.height, TICKS_PER_MESSAGE)
    ]


@pytest.fixture(scope="module")
def reference(
    nats_server: NatsServer, ticks: pl.DataFrame, tmp_path_factory: pytest.TempPathFactory
) -> pl.DataFrame:
    """The bars of a clean run of the valid messages (no poison, no fault)."""
    stream = _new_stream()
    asyncio.run(_publish(nats_server.url, stream, _bodies(ticks), {}))
    sink = f"sqlite:///{tmp_path_factory.mktemp('reference') / 'ref.db'}"
    report = asyncio.run(execute(_settings(nats_server.url, stream, sink)))
    assert report.exit_code == 0, report.error
    return read_bars(sink)


def _new_stream() -> str:
    return f"F{uuid.uuid4().hex[:10].upper()}"


def _settings(url: str, stream: str, sink: str, **values: Any) -> RunSettings:
    return RunSettings.model_validate(
        {
            "source": "nats",
            "nats_url": url,
            "stream": stream,
            "sink": sink,
            "resolution": "1s,1m",
            "idle_timeout": 0.5,
            "checkpoint_interval": 0.1,  # checkpoints mid-run: restarts resume from them
            **values,
        }
    )


@dataclass
class Poisoned:
    """Where the poison messages of one trial went: stream sequence -> body."""

    sequences: dict[int, bytes]


async def _publish(
    url: str, stream: str, bodies: list[bytes], poison_after: dict[int, bytes]
) -> Poisoned:
    """Publish ``bodies`` on ``stream`` (created), ``poison_after[i]`` right after body ``i``."""
    nc = await nats.connect(url)
    js = nc.jetstream()
    prefix = stream.lower()
    await js.add_stream(name=stream, subjects=[f"{prefix}.>"])
    poisoned: dict[int, bytes] = {}
    for index, body in enumerate(bodies):
        await js.publish(f"{prefix}.T", body)
        if index in poison_after:
            ack = await js.publish(f"{prefix}.P", poison_after[index], headers={"Trial": "p"})
            poisoned[ack.seq] = poison_after[index]
    await nc.close()
    return Poisoned(poisoned)


def _poison(rng: random.Random, count: int, messages: int, size: int) -> dict[int, bytes]:
    places = rng.sample(range(messages), count)
    return {place: b"{" + rng.randbytes(size // 2).hex().encode()[: size - 1] for place in places}


async def _bounded_run(settings: RunSettings) -> RunReport | None:
    """The run's report, or None when it did not end within ``RUN_BOUND_S``."""
    task = asyncio.ensure_future(execute(settings))
    done, _ = await asyncio.wait({task}, timeout=RUN_BOUND_S)
    return task.result() if done else None


def _one_line(report: RunReport) -> bool:
    return report.exit_code == 0 or (bool(report.error) and "\n" not in (report.error or ""))


def _same_bars(got: pl.DataFrame, want: pl.DataFrame) -> bool:
    if got.height != want.height or got.columns != want.columns:
        return False
    exact = got.drop("vwap").equals(want.drop("vwap"))
    close = ((got["vwap"] - want["vwap"]).abs() <= want["vwap"].abs() * 1e-9).all()
    return bool(exact and close)


async def _letters(url: str, stream: str) -> set[int]:
    """The stream sequences the dead-letter stream of ``stream`` holds a letter of."""
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        sub = await js.pull_subscribe(f"mdp.dlq.{stream}", stream=f"{stream}_DLQ")
        seen: set[int] = set()
        with contextlib.suppress(nats.errors.TimeoutError):
            while True:
                for msg in await sub.fetch(100, timeout=0.5):
                    seen.add(int((msg.headers or {})["Mdp-Dlq-Stream-Seq"]))
        return seen
    finally:
        await nc.close()


@dataclass
class Outcome:
    """The runs of one trial until one ended well (at most ``MAX_RUNS``)."""

    reports: list[RunReport | None]

    def failure(self, reference: pl.DataFrame, sink: str, poison: Poisoned) -> str | None:
        if any(report is None for report in self.reports):
            return f"a run did not end within {RUN_BOUND_S:.0f} s"
        reports = [report for report in self.reports if report is not None]
        if not all(_one_line(report) for report in reports):
            return "an error of more than one line"
        if reports[-1].exit_code != 0:
            return f"still failing after {len(reports)} runs: {reports[-1].error}"
        counted = sum(report.source.get("dead_lettered", 0) for report in reports)
        if counted != len(poison.sequences):
            return f"{counted} dead letters counted for {len(poison.sequences)} poison messages"
        if not _same_bars(read_bars(sink), reference):
            return "the store differs from a clean run's bars"
        return None


MAX_RUNS = 4


async def _rerun(settings: RunSettings, first: RunReport | None) -> Outcome:
    reports = [first]
    while first is not None and reports[-1] is not None and len(reports) < MAX_RUNS:
        last = reports[-1]
        assert last is not None
        if last.exit_code == 0:
            break
        reports.append(await _bounded_run(settings))
    return Outcome(reports)


# -- dead letters that cannot be written ------------------------------------------------------
DLQ_TRIALS = 6


async def _dlq_missing_trial(
    url: str, bodies: list[bytes], sink: str, rng: random.Random
) -> tuple[Outcome, Poisoned]:
    stream = _new_stream()
    poison = await _publish(url, stream, bodies, _poison(rng, rng.randint(1, 4), len(bodies), 200))
    settings = _settings(url, stream, sink)
    task = asyncio.ensure_future(_bounded_run(settings))
    nc = await nats.connect(url)
    js = nc.jetstream()
    dlq = f"{stream}_DLQ"
    while not task.done():  # the run creates the dead-letter stream as it starts
        with contextlib.suppress(nats.js.errors.NotFoundError):
            await js.stream_info(dlq)
            break
        await asyncio.sleep(0.01)
    await asyncio.sleep(rng.uniform(0, 0.4))
    with contextlib.suppress(nats.js.errors.NotFoundError):
        await js.delete_stream(dlq)  # the next run creates it again
    await nc.close()
    return await _rerun(settings, await task), poison


async def _dlq_too_small_trial(
    url: str, bodies: list[bytes], sink: str, rng: random.Random
) -> tuple[Outcome, Poisoned]:
    stream = _new_stream()
    sizes = rng.randint(1, 4)
    poison = await _publish(url, stream, bodies, _poison(rng, sizes, len(bodies), 3_000))
    nc = await nats.connect(url)
    js = nc.jetstream()
    config = api.StreamConfig(
        name=f"{stream}_DLQ", subjects=[f"mdp.dlq.{stream}"], max_msg_size=1_000
    )
    await js.add_stream(config)
    settings = _settings(url, stream, sink)
    first = await _bounded_run(settings)
    again = await _bounded_run(settings)  # the limit is unchanged: stops before it again
    config.max_msg_size = -1
    await js.update_stream(config)
    await nc.close()
    outcome = await _rerun(settings, await _bounded_run(settings))
    outcome.reports[:0] = [first, again]
    return outcome, poison


@pytest.mark.parametrize("case", ["dlq_missing", "dlq_too_small"])
def test_dead_letters_that_cannot_be_written_lose_nothing(
    case: str,
    nats_server: NatsServer,
    ticks: pl.DataFrame,
    reference: pl.DataFrame,
    tmp_path: Path,
    scenario: Scenario,
) -> None:
    rng = random.Random(f"{case}-21")
    bodies = _bodies(ticks)
    trial = _dlq_missing_trial if case == "dlq_missing" else _dlq_too_small_trial
    for number in range(DLQ_TRIALS):
        sink = f"sqlite:///{tmp_path / f'{case}-{number}.db'}"
        outcome, poison = asyncio.run(trial(nats_server.url, bodies, sink, rng))
        failure = outcome.failure(reference, sink, poison)
        scenario.record(failure is None, f"trial {number}: {failure}")
    assert scenario.held == scenario.tried, scenario.notes[:5]


# -- the server killed -9 -------------------------------------------------------------------------
SERVER_TRIALS = 6


async def _server_gone_trial(
    server: NatsServer, bodies: list[bytes], sink: str, rng: random.Random
) -> tuple[Outcome, Poisoned, set[int]]:
    stream = _new_stream()
    poison = await _publish(
        server.url, stream, bodies, _poison(rng, rng.randint(2, 6), len(bodies), 300)
    )
    settings = _settings(server.url, stream, sink)
    task = asyncio.ensure_future(_bounded_run(settings))
    await asyncio.sleep(rng.uniform(0.2, 2.0))
    server.kill()
    first = await task
    await asyncio.to_thread(server.start)
    outcome = await _rerun(settings, first)
    return outcome, poison, await _letters(server.url, stream)


def test_a_server_killed_at_random_instants_loses_nothing(
    ticks: pl.DataFrame,
    reference: pl.DataFrame,
    tmp_path: Path,
    scenario: Scenario,
) -> None:
    rng = random.Random(22)
    bodies = _bodies(ticks)
    server = NatsServer(tmp_path / "own")
    server.start()
    try:
        for number in range(SERVER_TRIALS):
            sink = f"sqlite:///{tmp_path / f'gone-{number}.db'}"
            outcome, poison, letters = asyncio.run(_server_gone_trial(server, bodies, sink, rng))
            failure = outcome.failure(reference, sink, poison)
            if failure is None and letters != set(poison.sequences):
                failure = f"dead letters of {sorted(letters)}, poison at {sorted(poison.sequences)}"
            scenario.record(failure is None, f"trial {number}: {failure}")
    finally:
        server.kill()
    assert scenario.held == scenario.tried, scenario.notes[:5]


# -- signals at random instants -------------------------------------------------------------------
SIGNAL_TRIALS = 30
SIGNAL_TICKS = 100_000
STOP_BOUND_S = 10.0


@pytest.fixture(scope="module")
def busy_stream(nats_server: NatsServer) -> str:
    """A stream of JSON messages of ten ticks each, the slowest body to take in."""
    stream = _new_stream()
    source = SyntheticSource(symbols=["AAA", "BBB"], ticks=SIGNAL_TICKS, seed=5, start_ns=START_NS)
    asyncio.run(
        publish_source(
            source.batches(),
            url=nats_server.url,
            stream=stream,
            prefix=stream.lower(),
            body="json",
            batch_ticks=10,
        )
    )
    return stream


def _checkpoint_position(db: Path, stream: str, durable: str) -> int | None:
    with contextlib.closing(sqlite3.connect(db)) as con:
        try:
            row = con.execute(
                "SELECT position FROM mdp_checkpoints WHERE name = ?", (f"nats:{stream}:{durable}",)
            ).fetchone()
        except sqlite3.OperationalError:  # no table: nothing was committed
            return None
    return None if row is None else int(row[0])


def _consumer_bound(url: str, stream: str, durable: str) -> bool:
    """True once the worker has bound its durable consumer: it is taking messages in."""

    async def ask() -> bool:
        nc = await nats.connect(url)
        try:
            await nc.jetstream().consumer_info(stream, durable)
            return True
        except nats.js.errors.NotFoundError:
            return False
        finally:
            await nc.close()

    return asyncio.run(ask())


def _signal_trial(
    url: str, stream: str, db: Path, sig: signal.Signals, delay_s: float
) -> str | None:
    """Signal a worker ``delay_s`` into its ingest; None when everything held, else what not.

    The instant is counted from the worker's consumer being bound, not from its start: signals
    during the imports are the entry point's business (tests/faults/test_signals.py), and on a
    busy machine the imports alone take seconds.
    """
    durable = f"d{uuid.uuid4().hex[:8]}"
    sink = f"sqlite:///{db}"
    proc = start_mdp(
        "run", "--source", "nats", "--nats-url", url, "--stream", stream, "--durable", durable,
        "--idle-timeout", "2", "--resolution", "1s,1m", "--sink", sink, "--json",
    )  # fmt: skip

    def bound() -> None:
        wait_until(lambda: handlers_installed(proc.pid), "the handlers", timeout_s=60)
        wait_until(
            lambda: proc.poll() is not None or _consumer_bound(url, stream, durable),
            "the worker to bind its consumer",
            timeout_s=120,
        )

    code, out, err = signal_when_ready(proc, sig, delay_s, bound, timeout_s=STOP_BOUND_S)
    where = f"{sig.name} after {delay_s:.2f} s"
    if code == -signal.SIGKILL:
        return f"{where}: still running {STOP_BOUND_S:.0f} s after the signal"
    if "Traceback" in err:
        return f"{where}: traceback: {err.strip().splitlines()[-1]}"
    report = summary(out)
    if report is None:
        return f"{where}: exit {code} without a JSON summary: {err.strip()[-200:]!r} {out[:200]!r}"
    stopped = report["stopped_by"] == sig.name
    if code != (EXIT_CODES[sig.name] if stopped else 0):
        return f"{where}: exit {code} for a run stopped by {report['stopped_by']}"
    if report["exit_code"] != code:
        return f"{where}: the summary says exit_code {report['exit_code']}, the process {code}"
    if not report["reconciled"]:
        return f"{where}: summary does not reconcile"
    stored = read_bars(sink).height if db.exists() else 0
    if stored != report["bars_written"]:
        return f"{where}: {stored} bars stored, summary says {report['bars_written']}"
    position = _checkpoint_position(db, stream, durable) if db.exists() else None
    if (position or 0) != report["source"]["position"]:
        return f"{where}: checkpoint at {position}, summary at {report['source']['position']}"
    return None


@pytest.mark.timeout(600)
def test_signals_to_a_nats_worker_at_random_instants(
    nats_server: NatsServer, busy_stream: str, tmp_path: Path, scenario: Scenario
) -> None:
    rng = random.Random(23)
    trials = [
        (signal.SIGINT if number % 2 else signal.SIGTERM, rng.uniform(0.0, 2.5))
        for number in range(SIGNAL_TRIALS)
    ]

    def one(number: int) -> str | None:
        sig, delay_s = trials[number]
        db = tmp_path / f"signal-{number}.db"
        return _signal_trial(nats_server.url, busy_stream, db, sig, delay_s)

    # Two workers at a time, each with its own durable consumer and store: the trials take half
    # the time, and each stop must be as bounded on a busy machine as on a quiet one.
    with ThreadPoolExecutor(max_workers=2) as pool:
        for number, failure in enumerate(pool.map(one, range(SIGNAL_TRIALS))):
            scenario.record(failure is None, f"trial {number}: {failure}")
    assert scenario.held == scenario.tried, scenario.notes[:5]


# -- fuzzed bodies ---------------------------------------------------------------------------
FUZZ_EXAMPLES = 25


async def _stream_messages(url: str, stream: str) -> int:
    """How many messages ``stream`` holds (0 when there is no such stream)."""
    nc = await nats.connect(url)
    try:
        return int((await nc.jetstream().stream_info(stream)).state.messages)
    except nats.js.errors.NotFoundError:
        return 0
    finally:
        await nc.close()


async def _dlq_count(url: str, stream: str) -> int:
    return await _stream_messages(url, f"{stream}_DLQ")


def _fuzz_failure(report: RunReport | None, published: int, letters: int) -> str | None:
    if report is None:
        return f"the run did not end within {RUN_BOUND_S:.0f} s"
    if report.exit_code != 0:
        return f"exit {report.exit_code}: {report.error}"
    if report.source["messages"] != published:
        return f"{report.source['messages']} of {published} messages taken: the stream is blocked"
    dead = report.source["dead_lettered"]
    counted = sum(n for reason, n in report.bad_reasons.items() if reason.startswith("dead-"))
    if not dead == counted == letters:
        return f"{dead} dead-lettered, {counted} counted, {letters} in the dead-letter stream"
    if not report.reconciled:
        return "the summary does not reconcile"
    return None


@pytest.mark.timeout(600)
def test_fuzzed_bodies_are_bars_or_counted_dead_letters(
    nats_server: NatsServer, tmp_path: Path, scenario: Scenario
) -> None:
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import strategies as st
    from nats_fuzz import any_body

    @settings(
        max_examples=FUZZ_EXAMPLES,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        database=None,
        phases=[Phase.generate],  # no shrinking: each example is one counted trial
    )
    @given(bodies=st.lists(any_body(), min_size=10, max_size=40))
    def trial(bodies: list[bytes]) -> None:
        stream = _new_stream()
        sink = f"sqlite:///{tmp_path / f'{stream}.db'}"
        marker = b'{"symbol": "MARKER", "price": 1, "size": 1, "ts": "2024-01-02T09:00:00Z"}'

        async def run() -> tuple[RunReport | None, int]:
            await _publish(nats_server.url, stream, [*bodies, marker], {})
            report = await _bounded_run(_settings(nats_server.url, stream, sink, idle_timeout=0.3))
            return report, await _dlq_count(nats_server.url, stream)

        try:
            report, letters = asyncio.run(run())
        except Exception as exc:  # what a user would see as a traceback
            failure: str | None = f"the run raised {type(exc).__name__}: {exc}"
        else:
            failure = _fuzz_failure(report, len(bodies) + 1, letters)
        scenario.record(failure is None, f"{failure} ({len(bodies)} bodies)")
        assert failure is None, failure

    trial()


# -- mdp publish stopped by a signal -------------------------------------------------------------
PUBLISH_TRIALS = 6


def _publish_trial(url: str, stream: str, sig: signal.Signals, delay_s: float) -> str | None:
    """``mdp publish`` of more ticks than it can send in the trial, stopped by ``sig``
    ``delay_s`` after its first message is in the stream: it must exit with the signal's code
    and a summary that counts exactly what the stream holds."""
    proc = start_mdp(
        "publish", "--nats-url", url, "--stream", stream, "--subject-prefix", stream.lower(),
        "--ticks", "50000000", "--symbols", "AAA,BBB", "--json",
    )  # fmt: skip

    def publishing() -> None:
        wait_until(
            lambda: proc.poll() is not None or asyncio.run(_stream_messages(url, stream)) > 0,
            "the first message in the stream",
            timeout_s=120,
        )

    code, out, err = signal_when_ready(proc, sig, delay_s, publishing, timeout_s=RUN_BOUND_S)
    report = summary(out)
    held = asyncio.run(_stream_messages(url, stream))
    if code != EXIT_CODES[sig.name]:
        return f"{sig.name} after {delay_s:.2f} s: exit {code}, stderr {err.strip()[-300:]!r}"
    if report is None or report.get("stopped_by") != sig.name:
        return f"{sig.name}: no summary saying so: {out[-300:]!r}"
    if report["messages"] != held or report["last_seq"] != held:
        return f"{sig.name}: {report['messages']} messages in the summary, {held} in the stream"
    if not 0 < report["ticks"] < 50_000_000:
        return f"{sig.name}: {report['ticks']} ticks reported"
    return None


def test_publish_stops_on_a_signal_with_every_sent_message_counted(
    nats_server: NatsServer, scenario: Scenario
) -> None:
    rng = random.Random(29)
    for number in range(PUBLISH_TRIALS):
        sig = signal.SIGINT if number % 2 else signal.SIGTERM
        stream = f"PUBSIG_{uuid.uuid4().hex[:8].upper()}"
        failure = _publish_trial(nats_server.url, stream, sig, rng.uniform(0.0, 1.5))
        scenario.record(failure is None, f"trial {number}: {failure}")
    assert scenario.held == scenario.tried, scenario.notes[:5]
