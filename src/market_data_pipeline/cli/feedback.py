"""``mdp feedback``: publish, watch and inspect backpressure feedback on the Redis bus.

These commands talk to a Redis bus (``--bus`` or ``MDP_BUS``): the in-process bus lives inside
one pipeline run and cannot be reached from another command. ``tail`` reads the stream outside
any consumer group, so it never takes entries away from a running pipeline. ``--feedback-stream``
(or ``MDP_FEEDBACK_STREAM``, comma separated) names the stream keys as ``mdp run`` does: ``tail``
and ``dlq`` read every key given, ``publish`` writes to the first.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Coroutine
from datetime import UTC, datetime
from enum import StrEnum
from functools import cache
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from ..errors import PipelineError, UsageError

if TYPE_CHECKING:  # rich loads when something is printed: ``mdp run`` imports this module too
    from rich.console import Console
    from rich.text import Text

    from ..bus.pulse import PoisonEntryError
    from ..bus.redis_streams import DeadLetter, RedisStreamBus
    from ..core import FeedbackEvent

T = TypeVar("T")

feedback_app = typer.Typer(
    name="feedback",
    help="Publish, watch and inspect backpressure feedback events on the Redis bus.",
    no_args_is_help=True,
)


@cache
def _out() -> Console:
    from rich.console import Console

    return Console(highlight=False)


@cache
def _err() -> Console:
    from rich.console import Console

    return Console(stderr=True, highlight=False)


# Default queue size per level when --queue-size is not given: the default enter marks.
_LEVEL_FILL = {"ok": 0.0, "soft": 0.70, "hard": 0.90}


class Level(StrEnum):
    """Backpressure levels accepted on the command line."""

    ok = "ok"
    soft = "soft"
    hard = "hard"


BusOption = Annotated[
    str | None,
    typer.Option(
        "--bus",
        "-b",
        envvar="MDP_BUS",
        metavar="URL",
        help="Redis bus URL, e.g. --bus redis://127.0.0.1:6379/0.",
        show_default=False,
    ),
]
NamespaceOption = Annotated[
    str,
    typer.Option(
        metavar="NAME",
        help="Stream key prefix, e.g. --namespace prod (stream <ns>:telemetry.feedback).",
    ),
]
JsonOption = Annotated[
    bool, typer.Option("--json", "-j", help="One JSON object per line, e.g. --json | jq .level.")
]
StreamOption = Annotated[
    list[str] | None,
    typer.Option(
        "--feedback-stream",
        metavar="KEY",
        help="Redis stream key, repeatable; {namespace} is replaced. tail and dlq read every key"
        " given, publish writes to the first. market-data-store publishes to"
        " '{namespace}:{namespace}.telemetry.feedback'. \\[default: $MDP_FEEDBACK_STREAM, else"
        " {namespace}:telemetry.feedback]",
        show_default=False,
    ),
]


def _open(bus_url: str | None, namespace: str, streams: list[str] | None) -> list[RedisStreamBus]:
    """Return one bus per stream key (the default key when none is given), in the given order."""
    try:
        return _buses(bus_url, namespace, streams)
    except PipelineError as exc:
        raise _exit(exc) from None


def _buses(bus_url: str | None, namespace: str, streams: list[str] | None) -> list[RedisStreamBus]:
    from ..bus import stream_keys
    from ..bus.urls import check_bus_url, is_memory_bus

    if not bus_url or is_memory_bus(bus_url):
        raise UsageError(
            "these commands need a Redis bus: pass --bus redis://host:port/db or set MDP_BUS"
        )
    check_bus_url(bus_url)
    if not streams:  # as mdp run reads it: comma separated
        listed = os.environ.get("MDP_FEEDBACK_STREAM", "").split(",")
        streams = [key.strip() for key in listed if key.strip()]
    from ..bus.redis_streams import RedisStreamBus

    keys: list[str | None] = [*stream_keys(streams, namespace)] or [None]
    return [RedisStreamBus(bus_url, namespace=namespace, stream_key=key) for key in keys]


async def _close(buses: list[RedisStreamBus]) -> None:
    for bus in buses:
        await bus.close()


def _run(work: Coroutine[Any, Any, T]) -> T:
    import asyncio

    try:
        return asyncio.run(work)
    except PipelineError as exc:
        raise _exit(exc) from None
    except KeyboardInterrupt:
        raise typer.Exit(0) from None


def _exit(exc: PipelineError) -> typer.Exit:
    from .output import error_line

    error_line(str(exc))
    return typer.Exit(exc.exit_code)


@feedback_app.command("publish")
def publish_command(
    level: Annotated[
        Level, typer.Option("--level", "-l", help="Backpressure level, e.g. --level hard.")
    ],
    coordinator: Annotated[
        str,
        typer.Option(
            "--coordinator",
            "-I",
            metavar="ID",
            help="Coordinator id of the sender, e.g. --coordinator store-1.",
        ),
    ] = "mdp-cli",
    queue_size: Annotated[
        int | None,
        typer.Option(
            min=0,
            help="Queue depth to report, e.g. --queue-size 900. \\[default: the level's mark]",
            metavar="N",
        ),
    ] = None,
    capacity: Annotated[
        int,
        typer.Option(min=1, help="Queue capacity to report, e.g. --capacity 1000.", metavar="N"),
    ] = 1000,
    bus: BusOption = None,
    namespace: NamespaceOption = "mdp",
    feedback_stream: StreamOption = None,
) -> None:
    """Publish one FeedbackEvent, as a store coordinator would."""
    size = queue_size if queue_size is not None else int(capacity * _LEVEL_FILL[level.value])
    buses = _open(bus, namespace, feedback_stream)
    entry_id = _run(_publish(buses, level.value, coordinator, size, capacity))
    from rich.text import Text

    _out().print(
        Text(f"published {level.value} from {coordinator} to {buses[0].key} as entry {entry_id}")
    )


async def _publish(
    buses: list[RedisStreamBus], level: str, coordinator: str, size: int, capacity: int
) -> str:
    from ..core import BackpressureLevel, FeedbackEvent

    try:
        event = FeedbackEvent(
            coordinator_id=coordinator,
            queue_size=size,
            capacity=capacity,
            level=BackpressureLevel(level),
            source="cli",
            ts=time.time(),
        )
        return await buses[0].publish_entry(event)
    finally:
        await _close(buses)


@feedback_app.command("tail")
def tail_command(
    bus: BusOption = None,
    namespace: NamespaceOption = "mdp",
    as_json: JsonOption = False,
    count: Annotated[
        int | None,
        typer.Option(
            "--count", "-n", min=1, help="Stop after N entries, e.g. --count 10.", metavar="N"
        ),
    ] = None,
    from_start: Annotated[
        bool, typer.Option(help="Start with the entries already in the stream, e.g. --from-start.")
    ] = False,
    feedback_stream: StreamOption = None,
) -> None:
    """Show feedback events as they arrive (invalid entries too, with the reason)."""
    buses = _open(bus, namespace, feedback_stream)
    _run(_tail(buses, bus or "", as_json, count, from_start))


async def _tail(
    buses: list[RedisStreamBus], bus_url: str, as_json: bool, count: int | None, from_start: bool
) -> None:
    keys = [bus.key for bus in buses]
    if not as_json:
        from rich.text import Text

        from ..urls import redact_url

        watched = ", ".join(keys)
        _err().print(Text(f"watching {watched} at {redact_url(bus_url)} (Ctrl-C to stop)"))
    seen = 0
    try:
        async for key, entry_id, item in buses[0].tail(from_start=from_start, also=keys[1:]):
            line = _tail_line(key if len(keys) > 1 else None, entry_id, item, as_json)
            if isinstance(line, str):  # JSON goes out byte for byte, never through rich
                sys.stdout.write(line + "\n")
                sys.stdout.flush()
            else:
                _out().print(line, soft_wrap=True)
            seen += 1
            if count is not None and seen >= count:
                return
    finally:
        await _close(buses)


def _tail_line(
    key: str | None, entry_id: str, item: FeedbackEvent | PoisonEntryError, as_json: bool
) -> str | Text:
    """Return one entry: a JSON string, or a ``Text`` that shows every field literally.

    ``key`` names the stream when several are tailed (JSON carries it as ``stream``).
    """
    from rich.text import Text

    where = {"stream": key} if key is not None else {}
    prefix = f"{key}  " if key is not None else ""
    if isinstance(item, PipelineError):
        if as_json:
            return json.dumps({**where, "id": entry_id, "error": str(item)})
        return Text.assemble(f"{prefix}{entry_id}  ", ("invalid", "red"), f"  {item}")
    record = {**where, "id": entry_id, **item.model_dump(mode="json")}
    if as_json:
        return json.dumps(record)
    color = {"ok": "green", "soft": "yellow", "hard": "red"}[record["level"]]
    return Text.assemble(
        f"{prefix}{entry_id}  {_when(record['ts'])}  ",
        (f"{record['level']:<4}", color),
        f"  {record['coordinator_id']}  {record['queue_size']}/{record['capacity']}  "
        f"source={record['source']}",
    )


def _when(ts: float) -> str:
    try:
        return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    except (ValueError, OverflowError, OSError):  # a sender's ts beyond what a datetime holds
        return repr(ts)


@feedback_app.command("dlq")
def dlq_command(
    bus: BusOption = None,
    namespace: NamespaceOption = "mdp",
    as_json: JsonOption = False,
    limit: Annotated[
        int,
        typer.Option(
            "--limit", "-n", min=1, help="Show the newest N, e.g. --limit 20.", metavar="N"
        ),
    ] = 100,
    feedback_stream: StreamOption = None,
) -> None:
    """List dead-lettered entries, newest first, with the reason each was rejected."""
    buses = _open(bus, namespace, feedback_stream)
    several = len(buses) > 1
    letters = _run(_dead_letters(buses, limit))
    if as_json:
        for dlq_key, letter in letters:
            where = {"stream": dlq_key} if several else {}
            record = {**where, **letter.__dict__, "data": letter.data.decode("utf-8", "replace")}
            sys.stdout.write(json.dumps(record) + "\n")  # byte for byte, never through rich
        return
    if not letters:
        _out().print("no dead-lettered entries")
        return
    from rich.table import Table
    from rich.text import Text

    table = Table(
        *(["stream"] if several else []), "dlq id", "original id", "when", "reason", "data"
    )
    for dlq_key, letter in letters:
        data = letter.data[:240].decode("utf-8", "replace")
        table.add_row(
            *([Text(dlq_key)] if several else []),
            Text(letter.id),
            Text(letter.original_id),
            _when(letter.ts),
            Text(letter.reason),
            Text(data if len(data) <= 60 else data[:57] + "..."),
        )
    _out().print(table)


async def _dead_letters(buses: list[RedisStreamBus], limit: int) -> list[tuple[str, DeadLetter]]:
    """Return the newest ``limit`` dead letters of ``buses`` as (dlq key, letter), newest first."""
    letters: list[tuple[str, DeadLetter]] = []
    try:
        for bus in buses:
            letters += [(bus.dlq_key, letter) for letter in await bus.dead_letters(limit)]
    finally:
        await _close(buses)
    return sorted(letters, key=lambda item: _entry_order(item[1].id), reverse=True)[:limit]


def _entry_order(entry_id: str) -> tuple[int, int]:
    """Return a stream entry id (``millis-seq``) as numbers, so ids of different streams sort."""
    millis, _, seq = entry_id.partition("-")
    return int(millis), int(seq or 0)
