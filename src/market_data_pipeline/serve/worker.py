"""One run in its own process: ``python -m market_data_pipeline.serve.worker``.

The service starts this module as a child process and talks to it in JSON lines:

    stdin  (service -> run)   {"settings": {...}, "filters": {...}}    once, to start
                              {"stop": "cancelled"}                     stop as Ctrl-C does
                              end of file                               the service is gone: stop
    stdout (run -> service)   {"ready": true}                           imports done, waiting
                              {"started": true}                         the pipeline runs
                              {"progress": {...}}                       about 4 times a second
                              {"report": {...}, "exit_code": N}         the end

A run that crashes or is killed (``kill -9``, out of memory) only ends this process; the service
sees its pipe close without a report and records the run ``failed`` with the exit status.
SIGINT and SIGTERM stop the run the way they stop ``mdp run``: open windows are written.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from typing import IO, Any

from ..cli.signals import EXIT_CODES, STOP
from ..cli.startup import one_polars_thread

PROGRESS_INTERVAL_S = 0.25
# Runs are batch work, the service's answers are not. Runs stay in the service's session
# (manager._spawn_worker), so with the kernel's autogroups, or in a pod's cgroup, they share
# one scheduling group with it and nice values weigh them against it: at 19 (weight 15 to the
# service's 1024) fifty busy runs together weigh less than the service, so status polls and
# probes get a core when they need one; runs alone still get every idle cycle. Set before the
# imports: a spare worker's start (about a second of CPU) is batch work too.
NICE = 19
CANCELLED = "cancelled"
CANCEL_EXIT_CODE = EXIT_CODES["SIGINT"]  # a cancelled run ends as Ctrl-C ends `mdp run`


class Channel:
    """The JSON-lines pipe to the service (stdout), kept apart from anything else printed."""

    def __init__(self) -> None:
        # Our protocol keeps a private copy of stdout; fd 1 then points at stderr, so a stray
        # print() by a library can never corrupt a message.
        self._out: IO[str] = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
        os.dup2(2, 1)

    def send(self, message: dict[str, Any]) -> None:
        self._out.write(json.dumps(message, default=str) + "\n")
        self._out.flush()


def main() -> int:
    """Wait for the run's settings on stdin, run it, report; return the process exit code."""
    os.nice(NICE)
    one_polars_thread()  # as in `mdp run`: before polars loads (the imports below)
    STOP.install()  # signals become stop requests, as in `mdp run`
    channel = Channel()
    _log_to_stderr()
    from ..api import _run_to_end  # noqa: F401  - the heavy imports happen before "ready"
    from ..runtime import execute  # noqa: F401

    channel.send({"ready": True})
    line = _read_line()
    if not line:
        return 0  # the service went away before handing us a run
    request = json.loads(line)
    return asyncio.run(_run(channel, request))


def _log_to_stderr() -> None:
    """The run's warnings go to the service's log, URL passwords masked."""
    import logging

    from ..cli.output import MaskingFormatter

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(MaskingFormatter("run %(process)d: %(levelname)s %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.WARNING)


def _read_line() -> str:
    """Read the first line byte by byte: a buffered read could swallow a stop sent right after,
    which the asyncio reader of ``_listen`` must see."""
    data = bytearray()
    while not data.endswith(b"\n"):
        chunk = os.read(0, 1)
        if not chunk:
            break
        data += chunk
    return data.decode("utf-8")


async def _run(channel: Channel, request: dict[str, Any]) -> int:
    from ..config import RunSettings
    from ..runtime import Pipeline, execute
    from .filters import filter_source

    settings = RunSettings.model_validate(request["settings"])
    loop = asyncio.get_running_loop()
    tasks: list[asyncio.Task[None]] = []

    def started(pipeline: Pipeline) -> None:
        STOP.forward_to(loop, pipeline.request_stop)
        tasks.append(asyncio.create_task(_report_progress(channel, pipeline)))
        tasks.append(asyncio.create_task(_listen(pipeline)))
        channel.send({"started": True})

    wrap = filter_source(request.get("filters") or {})
    try:
        report = await execute(settings, on_start=started, wrap_source=wrap)
    finally:
        STOP.detach()
        for task in tasks:
            task.cancel()
    code = report.exit_code
    if code == 0 and report.stopped_by in EXIT_CODES:
        code = EXIT_CODES[report.stopped_by]
    elif code == 0 and report.stopped_by == CANCELLED:
        code = CANCEL_EXIT_CODE
    channel.send({"report": report.as_dict(), "exit_code": code})
    return 0


async def _report_progress(channel: Channel, pipeline: Any) -> None:
    while True:
        p = pipeline.progress()
        channel.send(
            {
                "progress": {
                    "elapsed_s": round(p.elapsed_s, 3),
                    "ticks": p.ticks,
                    "bars_written": p.bars_written,
                    "queue_depth": p.queue_depth,
                    "queue_capacity": p.queue_capacity,
                    "scale": p.scale,
                    "level": p.level,
                    "read_fraction": p.read_fraction,
                    "event_ns": p.event_ns,
                    "provider": pipeline.source.provider,
                }
            }
        )
        await asyncio.sleep(PROGRESS_INTERVAL_S)


async def _listen(pipeline: Any) -> None:
    """Read stop requests from the service; end of file (the service died) stops the run too."""
    reader = asyncio.StreamReader()
    loop = asyncio.get_running_loop()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while True:
        line = await reader.readline()
        if not line:
            pipeline.request_stop("service gone")
            return
        message = json.loads(line)
        if "stop" in message:
            pipeline.request_stop(str(message["stop"]))


if __name__ == "__main__":
    sys.exit(main())
