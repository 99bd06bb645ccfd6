"""Runs of the service: validated, recorded in the store, each driven in its own process.

Why a child process per run (``python -m market_data_pipeline.serve.worker``) rather than a task
or a thread: a run that crashes, leaks or is killed (``kill -9``, the kernel's OOM killer) takes
only its process down; the service sees the pipe close without a report and records the run
``failed`` with how the process ended. A process can be stopped for sure, and its death is
observed by ``wait()`` without polling. A fresh interpreter (not a fork of the service) holds
none of the service's threads or sockets. The import cost (polars, pyarrow, Core; most of a
second) is paid ahead: one worker is kept started and waiting, so a request's run begins at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import json
import logging
import socket
import sys
import time
import uuid
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from .. import metrics
from ..errors import PipelineError, UsageError
from ..isotime import iso_time_ns
from ..urls import mask_urls, redact_url
from .guards import ForbiddenError, ServeConfig, guard_settings
from .records import UNFINISHED, RunRecord, RunStore

log = logging.getLogger(__name__)

ENDED_KEPT = 100  # ended runs whose flow the page can still show
HISTORY = 900  # progress samples kept per live run (about 15 minutes at one a second)
SAMPLE_EVERY_S = 1.0
STOP_WAIT_S = 30.0  # how long a stopping service waits for its runs to write their windows
LINE_LIMIT = 16 * 1024 * 1024  # a report lists every input file: lines can be long
LEVELS = {"ok": 0, "soft": 1, "hard": 2}
REPLAY_FILTERS = ("symbols", "start", "end", "provider")
LEASE_RENEWALS = 3  # renewals per lease: two can fail before other replicas give a run up


class TooManyRunsError(PipelineError):
    """``--max-runs`` runs are already pending or running (HTTP 429)."""


class NotFoundError(PipelineError):
    """No run has that id (HTTP 404)."""


class ConflictError(PipelineError):
    """The run is not in a state that allows this (HTTP 409)."""


@dataclass
class Request:
    """A validated run request: settings for the worker, filters, and what the record shows."""

    kind: str
    settings: dict[str, Any]
    filters: dict[str, Any]
    shown: dict[str, Any]
    dedup_key: str
    # mdp run's result for a file refused at its header or first rows: the run fails at once.
    refused: dict[str, Any] | None = None


@dataclass
class LiveRun:
    """A run this service is driving: its record, process and latest progress."""

    record: RunRecord
    request: Request
    progress: dict[str, Any] | None = None
    history: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=HISTORY))
    process: asyncio.subprocess.Process | None = None
    stop_reason: str | None = None
    task: asyncio.Task[None] | None = None
    _last_ticks: int = 0
    _last_bars: int = 0
    _last_sample: tuple[float, int] | None = None


def now_iso(after_s: float = 0.0) -> str:
    stamp = datetime.now(UTC) + timedelta(seconds=after_s)
    return stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class RunManager:
    """Create, list, stop and resume runs; keep ``mdp_runs`` up to date."""

    def __init__(self, config: ServeConfig) -> None:
        self.config = config
        self.store = RunStore(config.default_sink)
        # Who drives a run, as the store says: the same name after a restart, so a starting
        # service knows its earlier instance's runs; other replicas have other names.
        self.owner = f"{socket.gethostname()}:{config.port}"
        self.live: dict[str, LiveRun] = {}
        # The last progress and the flow of runs that ended lately (memory only, for the page).
        self.ended: OrderedDict[str, LiveRun] = OrderedDict()
        self._lock = asyncio.Lock()
        self._spare: asyncio.Task[asyncio.subprocess.Process] | None = None
        self._heartbeat: asyncio.Task[None] | None = None
        self._stopping = False

    # -- lifecycle ------------------------------------------------------------------------------
    async def start(self) -> None:
        """Create the table, mark what an earlier service left unfinished, start a spare worker."""
        # The first request must not pay for importing the validation (polars, Core: seconds).
        await asyncio.to_thread(_import_validation)
        await asyncio.to_thread(self.store.create_table)
        marked = await asyncio.to_thread(
            self.store.mark_interrupted, now_iso(), self.owner, own=True
        )
        if marked:
            log.warning("%d run(s) an earlier service did not finish are now interrupted", marked)
        self._spare = asyncio.create_task(_spawn_worker())
        self._heartbeat = asyncio.create_task(self._keep_leases(), name="run-leases")

    async def stop(self) -> None:
        """Stop every run as Ctrl-C would, wait for them, record them ``interrupted``."""
        self._stopping = True
        if self._heartbeat is not None:
            self._heartbeat.cancel()
        for run in list(self.live.values()):
            self._send_stop(run, "service stopping")
        tasks = [run.task for run in self.live.values() if run.task is not None]
        if tasks:
            _done, pending = await asyncio.wait(tasks, timeout=STOP_WAIT_S)
            for run in list(self.live.values()):
                if run.process is not None and run.process.returncode is None:
                    run.process.kill()
            if pending:
                await asyncio.wait(pending, timeout=5)
        if self._spare is not None:
            spare = await _settled(self._spare)
            if spare is not None and spare.returncode is None:
                spare.kill()
                await spare.wait()

    # -- requests -------------------------------------------------------------------------------
    async def submit(
        self, kind: str, body: Any, idempotency_key: str | None = None
    ) -> tuple[RunRecord, bool]:
        """Validate and start a run; return it and whether it is new (a retry returns the first).

        Raise ``UsageError``/``BadInputError`` (422), ``ForbiddenError`` (403),
        ``TooManyRunsError`` (429).
        """
        request = await asyncio.to_thread(self._prepare, kind, body)
        async with self._lock:
            existing = await self._existing(request, idempotency_key)
            if existing is not None:
                return existing, False
            active = sum(run.record.status in UNFINISHED for run in self.live.values())
            if active >= self.config.max_runs:
                raise TooManyRunsError(
                    f"{active} runs are pending or running (--max-runs {self.config.max_runs}):"
                    " retry later"
                )
            record = RunRecord(
                id=uuid.uuid4().hex[:16],
                kind=kind,
                status="pending",
                created_at=now_iso(),
                request=request.shown,
                dedup_key=request.dedup_key,
                idempotency_key=idempotency_key,
                owner=self.owner,
                lease_until=now_iso(self.config.lease_s),
            )
            await asyncio.to_thread(self.store.insert, record)
            self._launch(record, request)
        return record, True

    async def resume(self, run_id: str, overrides: Any = None) -> RunRecord:
        """Start again a resumable replay that did not end: it continues from its checkpoint.

        ``overrides`` change settings that do not change what is built (``{"speed": null}``
        goes as fast as possible); a null value drops the setting.
        """
        record = await self.get(run_id)
        if record.status in UNFINISHED or record.status == "success":
            raise ConflictError(f"run {run_id} is {record.status}: only an ended run resumes")
        if not record.request.get("settings", {}).get("resume"):
            raise ConflictError(
                f"run {run_id} was not started with resume: true, so it kept no checkpoint;"
                " start it again instead"
            )
        if overrides is not None and not isinstance(overrides, dict):
            raise UsageError("invalid settings: expected a JSON object of settings to change")
        merged = {**self._body_of(record), **(overrides or {})}
        body = {key: value for key, value in merged.items() if value is not None}
        async with self._lock:
            request = await asyncio.to_thread(self._prepare, record.kind, body)
            new = RunRecord(
                id=uuid.uuid4().hex[:16],
                kind=record.kind,
                status="pending",
                created_at=now_iso(),
                request=request.shown,
                dedup_key=request.dedup_key,
                resumed_from=run_id,
                owner=self.owner,
                lease_until=now_iso(self.config.lease_s),
            )
            await asyncio.to_thread(self.store.insert, new)
            self._launch(new, request)
        return new

    async def cancel(self, run_id: str) -> RunRecord:
        """Stop a run as Ctrl-C stops ``mdp run``; it ends ``cancelled`` once its windows are in."""
        run = self.live.get(run_id)
        if run is None or run.record.status not in UNFINISHED:
            record = await self.get(run_id)
            if record.status in UNFINISHED:
                raise ConflictError(
                    f"run {run_id} is {record.status} in the service {record.owner}:"
                    " send the request there"
                )
            raise ConflictError(f"run {run_id} already ended ({record.status})")
        self._send_stop(run, "cancelled")
        return run.record

    async def get(self, run_id: str) -> RunRecord:
        # Runs this service drives or ended lately answer from memory: a status poll needs no
        # round trip to the store (their records are written there as they change).
        run = self.live.get(run_id) or self.ended.get(run_id)
        if run is not None:
            return run.record
        record = await asyncio.to_thread(self.store.get, run_id)
        if record is None:
            raise NotFoundError(f"no run {run_id!r}")
        return record

    async def runs(self, kind: str | None = None) -> list[RunRecord]:
        stored = await asyncio.to_thread(self.store.list, kind=kind)
        return [self.live[r.id].record if r.id in self.live else r for r in stored]

    def view(self, record: RunRecord) -> dict[str, Any]:
        """The JSON shape of a run (both APIs): record, live progress, report, exit code."""
        run = self.live.get(record.id) or self.ended.get(record.id)
        progress = run.progress if run is not None else None
        if record.report is not None:
            progress = {**(progress or {}), **_final_progress(record.report)}
        if progress is None and record.report is not None:
            progress = _final_progress(record.report)
        return {
            "id": record.id,
            "run_id": record.id,
            "kind": record.kind,
            "status": record.status,
            "created_at": record.created_at,
            "started_at": record.started_at,
            "finished_at": record.finished_at,
            "request": record.request,
            "progress": progress,
            "exit_code": record.exit_code,
            "error": record.error,
            "report": record.report,
            "resumed_from": record.resumed_from,
            "owner": record.owner,
            # The run's process while it runs (operators may want to look at it).
            "pid": run.process.pid if record.id in self.live and run and run.process else None,
        }

    def history(self, run_id: str) -> list[dict[str, Any]]:
        run = self.live.get(run_id) or self.ended.get(run_id)
        return list(run.history) if run is not None else []

    async def counts(self) -> dict[str, int]:
        return await asyncio.to_thread(self.store.counts)

    async def _keep_leases(self) -> None:
        """Renew the leases of this service's runs; interrupt runs of replicas that are gone."""
        while True:
            await asyncio.sleep(self.config.lease_s / LEASE_RENEWALS)
            try:
                await asyncio.to_thread(self.store.renew, self.owner, now_iso(self.config.lease_s))
                marked = await asyncio.to_thread(
                    self.store.mark_interrupted, now_iso(), self.owner, own=False
                )
            except Exception as exc:  # the store may be away a while; the next beat retries
                log.warning("cannot renew the runs' leases: %s", mask_urls(str(exc)))
                continue
            if marked:
                log.warning("%d run(s) of a service that is gone are now interrupted", marked)

    # -- validation -----------------------------------------------------------------------------
    def _prepare(self, kind: str, body: Any) -> Request:
        """Validate a request as ``mdp run`` validates its flags (sync: run in a thread)."""
        from ..build import check_replay_head, engine_for
        from ..cli.precheck import precheck_run
        from ..config import load_settings
        from ..report import failed_before_start

        if not isinstance(body, dict):
            raise UsageError("invalid settings: expected a JSON object of mdp run settings")
        flags, filters = _split_replay(body) if kind == "replay" else (dict(body), {})
        flags = {key.replace("-", "_").lower(): value for key, value in flags.items()}
        flags.pop("json", None)  # the API answers in JSON anyway
        flags = guard_settings(flags, self.config)
        precheck_run(None, {}, flags)
        settings = load_settings(config_file=None, environ={}, flags=flags)
        engine_for(settings)  # resolutions, grace, zone and calendar refused here, not later
        if kind == "replay" and not settings.is_replay:
            raise UsageError(
                "invalid settings: input: a replay needs input (files in the data dir)"
            )
        refused = None
        try:
            check_replay_head(settings)
        except PipelineError as exc:  # what the run would answer, without starting it
            report = failed_before_start(settings.sink, exc)
            refused = {"report": report.as_dict(), "exit_code": report.exit_code}
        dumped = settings.model_dump(mode="json", by_alias=True)
        shown = json.loads(mask_urls(json.dumps({"settings": flags, "filters": filters})))
        for name in ("sink", "bus", "nats_url"):
            if isinstance(shown["settings"].get(name), str):
                shown["settings"][name] = redact_url(shown["settings"][name])
        canonical = json.dumps({"kind": kind, "body": body}, sort_keys=True, default=str)
        return Request(
            kind=kind,
            settings=dumped,
            filters=filters,
            shown=shown,
            dedup_key=hashlib.sha256(canonical.encode()).hexdigest(),
            refused=refused,
        )

    async def _existing(self, request: Request, key: str | None) -> RunRecord | None:
        if key is not None:
            if any(run.record.idempotency_key == key for run in self.live.values()):
                return next(r.record for r in self.live.values() if r.record.idempotency_key == key)
            return await asyncio.to_thread(self.store.by_idempotency_key, key)
        for run in self.live.values():
            same = run.record.dedup_key == request.dedup_key and run.record.kind == request.kind
            if same and run.record.status in UNFINISHED and run.record.idempotency_key is None:
                return run.record
        # A retry may reach another replica than the first request did: the store knows.
        return await asyncio.to_thread(self.store.unfinished_twin, request.kind, request.dedup_key)

    def _body_of(self, record: RunRecord) -> dict[str, Any]:
        """The request body of an earlier run, its masked sink mapped back to the real one."""
        flags = dict(record.request.get("settings", {}))
        shown_sink = flags.get("sink")
        flags["sink"] = next(
            (s for s in self.config.sinks if redact_url(s) == shown_sink), shown_sink
        )
        flags.pop("bus", None)  # the service's own bus is set again
        filters = record.request.get("filters") or {}
        if record.kind == "replay":
            return {**flags, **_filters_body(filters)}
        return flags

    # -- running --------------------------------------------------------------------------------
    def _launch(self, record: RunRecord, request: Request) -> None:
        run = LiveRun(record=record, request=request)
        self.live[record.id] = run
        run.task = asyncio.create_task(self._drive(run), name=f"run-{record.id}")

    async def _take_worker(self) -> asyncio.subprocess.Process:
        spare, self._spare = self._spare, asyncio.create_task(_spawn_worker())
        process = await _settled(spare) if spare is not None else None
        if process is None or process.returncode is not None:
            process = await _spawn_worker()
        return process

    async def _drive(self, run: LiveRun) -> None:
        result: dict[str, Any] | None = run.request.refused
        if result is not None:
            await self._finish(run, result)
            return
        try:
            run.process = process = await self._take_worker()
            assert process.stdin is not None and process.stdout is not None
            message = {"settings": run.request.settings, "filters": run.request.filters}
            process.stdin.write((json.dumps(message) + "\n").encode())
            await process.stdin.drain()
            if run.stop_reason is not None:  # cancelled while the worker was being taken
                self._send_stop(run, run.stop_reason)
            async for line in process.stdout:
                result = await self._on_message(run, json.loads(line)) or result
            await process.wait()
        except Exception as exc:  # the service must outlive any run
            log.exception("run %s: %s", run.record.id, mask_urls(str(exc)))
        finally:
            await self._finish(run, result)

    async def _on_message(self, run: LiveRun, message: dict[str, Any]) -> dict[str, Any] | None:
        if message.get("started"):
            run.record.status = "running"
            run.record.started_at = now_iso()
            await asyncio.to_thread(self.store.update, run.record)
        elif "progress" in message:
            self._on_progress(run, message["progress"])
        elif "report" in message:
            return message
        return None

    def _on_progress(self, run: LiveRun, raw: dict[str, Any]) -> None:
        ticks, bars = int(raw["ticks"]), int(raw["bars_written"])
        metrics.TICKS.inc(max(0, ticks - run._last_ticks))
        metrics.BARS_WRITTEN.inc(max(0, bars - run._last_bars))
        run._last_ticks, run._last_bars = ticks, bars
        provider = str(raw.get("provider") or "replay")
        metrics.RATE_SCALE.labels(provider=provider).set(float(raw["scale"]))
        metrics.BACKPRESSURE_LEVEL.labels(provider=provider).set(LEVELS.get(raw["level"], 0))
        metrics.WRITE_QUEUE_DEPTH.set(
            sum(int((r.progress or {}).get("queue_depth", 0)) for r in self.live.values())
        )
        now = time.time()
        rate = ticks / raw["elapsed_s"] if raw["elapsed_s"] else 0.0
        if run._last_sample is not None and now > run._last_sample[0]:
            rate = (ticks - run._last_sample[1]) / (now - run._last_sample[0])
        run.progress = _progress_view(raw, rate)
        if run._last_sample is None or now - run._last_sample[0] >= SAMPLE_EVERY_S:
            run.history.append(
                {
                    "t": round(now, 3),
                    "ticks_per_s": round(rate, 1),
                    "level": raw["level"],
                    "scale": raw["scale"],
                    "queue_fill": raw["queue_depth"] / max(1, raw["queue_capacity"]),
                }
            )
            run._last_sample = (now, ticks)

    async def _finish(self, run: LiveRun, result: dict[str, Any] | None) -> None:
        # Shown once stored: a client that saw the end finds it in the store too (/metrics).
        record = dataclasses.replace(run.record)
        record.finished_at = now_iso()
        if result is None:
            code = run.process.returncode if run.process is not None else None
            record.status = "interrupted" if self._stopping else "failed"
            record.exit_code = 1
            record.error = _death(code) if run.process is not None else _NO_WORKER
        else:
            report = result["report"]
            # What a run did after its last progress message (a short run may send none).
            metrics.TICKS.inc(max(0, int(report["ticks_admitted"]) - run._last_ticks))
            metrics.BARS_WRITTEN.inc(max(0, int(report["bars_written"]) - run._last_bars))
            record.report = report
            record.exit_code = int(result["exit_code"])
            record.error = report.get("error")
            record.status = self._status(run, report, record.exit_code)
        try:
            await asyncio.to_thread(self.store.update, record)
        except Exception as exc:
            log.error("run %s: cannot record its end: %s", record.id, mask_urls(str(exc)))
        run.record = record
        self.live.pop(record.id, None)
        self.ended[record.id] = run
        while len(self.ended) > ENDED_KEPT:
            self.ended.popitem(last=False)
        if run.progress is not None and run.progress.get("provider"):
            metrics.WRITE_QUEUE_DEPTH.set(
                sum(int((r.progress or {}).get("queue_depth", 0)) for r in self.live.values())
            )

    def _status(self, run: LiveRun, report: dict[str, Any], exit_code: int) -> str:
        stopped_by = report.get("stopped_by")
        if stopped_by == "service stopping" or (self._stopping and stopped_by != "end of input"):
            return "interrupted"
        if exit_code == 0:
            return "success"
        if stopped_by in ("cancelled", "SIGINT", "SIGTERM") and report.get("exit_code") == 0:
            return "cancelled"
        return "failed"

    def _send_stop(self, run: LiveRun, reason: str) -> None:
        run.stop_reason = reason
        process = run.process
        if process is None or process.stdin is None or process.returncode is not None:
            return  # _drive sends it once the worker is taken
        with contextlib.suppress(ConnectionError, RuntimeError):
            process.stdin.write((json.dumps({"stop": reason}) + "\n").encode())


def _import_validation() -> None:
    from ..build import engine_for  # noqa: F401
    from ..cli import precheck  # noqa: F401
    from ..config import load_settings  # noqa: F401


def _split_replay(body: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Separate the earlier service's replay fields (filters, speed 0) from run settings."""
    flags = {k: v for k, v in body.items() if k not in REPLAY_FILTERS}
    if flags.get("speed") in (0, 0.0, "0"):
        flags.pop("speed")  # 0 meant as fast as possible
    filters: dict[str, Any] = {}
    symbols = body.get("symbols")
    if symbols:
        items = symbols.split(",") if isinstance(symbols, str) else list(symbols)
        filters["symbols"] = [str(s).strip() for s in items if str(s).strip()]
    for name in ("start", "end"):
        if body.get(name):
            filters[f"{name}_ns"] = iso_time_ns(str(body[name]), name)
            filters[name] = str(body[name])
    if body.get("provider"):
        filters["provider"] = str(body["provider"])
    return flags, filters


def _filters_body(filters: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in filters.items() if k in REPLAY_FILTERS}


def _progress_view(raw: dict[str, Any], rate: float) -> dict[str, Any]:
    event_ns = raw.get("event_ns")
    return {
        "elapsed_s": raw["elapsed_s"],
        "ticks": raw["ticks"],
        "ticks_per_s": round(rate, 1),
        "share_read": raw.get("read_fraction"),
        "event_time": None if event_ns is None else _iso_ns(int(event_ns)),
        "bars_written": raw["bars_written"],
        "queue_depth": raw["queue_depth"],
        "queue_capacity": raw["queue_capacity"],
        "level": raw["level"],
        "scale": raw["scale"],
        "provider": raw.get("provider"),
    }


def _final_progress(report: dict[str, Any]) -> dict[str, Any]:
    partial = report.get("partial") or {}
    return {
        "elapsed_s": report.get("elapsed_s"),
        "ticks": report.get("ticks_admitted"),
        "ticks_per_s": report.get("ticks_per_s"),
        "share_read": partial.get("read_fraction", 1.0 if report.get("exit_code") == 0 else None),
        "bars_written": report.get("bars_written"),
    }


def _iso_ns(ts_ns: int) -> str:
    stamp = datetime.fromtimestamp(ts_ns / 1e9, tz=UTC)
    return stamp.isoformat(timespec="seconds").replace("+00:00", "Z")


_NO_WORKER = "the run's process could not be started (see the service's log)"


def _death(code: int | None) -> str:
    if code is not None and code < 0:
        return f"the run's process died (signal {-code}) before it reported"
    return f"the run's process ended (exit status {code}) before it reported"


async def _spawn_worker() -> asyncio.subprocess.Process:
    """Start a worker and wait until it has imported the pipeline and is ready for a run."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "market_data_pipeline.serve.worker",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        limit=LINE_LIMIT,
        # Its own process group, so a Ctrl-C at the terminal reaches the runs through the
        # service, which stops them in order; the runs outlive a killed service just long
        # enough to stop. Not its own session: that would give each run its own autogroup,
        # weighed equal to the service whatever its nice value (fifty runs left the service
        # 1/51 of the CPU and status polls took seconds).
        process_group=0,
    )
    assert process.stdout is not None
    line = await process.stdout.readline()
    if not line or not json.loads(line).get("ready"):
        raise RuntimeError(f"the run worker did not start (exit status {await process.wait()})")
    return process


async def _settled(
    task: asyncio.Task[asyncio.subprocess.Process],
) -> asyncio.subprocess.Process | None:
    try:
        return await task
    except Exception as exc:
        log.error("cannot start a run worker: %s", exc)
        return None


__all__ = [
    "ConflictError",
    "ForbiddenError",
    "NotFoundError",
    "RunManager",
    "TooManyRunsError",
]
