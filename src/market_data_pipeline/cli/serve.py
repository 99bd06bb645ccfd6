"""``mdp serve``: the pipeline as an HTTP service (job API, probes, metrics, a page)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ..defaults import DEFAULT_SINK
from ..errors import EXIT_BAD_INPUT, PipelineError

if TYPE_CHECKING:
    from ..serve.guards import ServeConfig

EXAMPLES = """[bold]Examples[/]

  mdp serve                        [dim]# 127.0.0.1:8083, inputs under ., ./mdp.db[/]

  mdp serve --data-dir /data --sink postgresql://mdp@db/market --max-runs 8

  MDP_SERVE_TOKEN=... mdp serve --host 0.0.0.0      [dim]# beyond loopback only with a token[/]

  curl -X POST localhost:8083/v1/runs -d '{"input": "day1.csv", "resolution": "1m,5m"}'
  curl localhost:8083/v1/runs/RUN_ID ; curl -X DELETE localhost:8083/v1/runs/RUN_ID

The page at http://127.0.0.1:8083/ shows runs, their flow, and candles of any stored series.
See docs/serve.md.
"""


def serve_command(
    host: Annotated[
        str,
        typer.Option(metavar="ADDR", help="Address to listen on (beyond loopback: needs a token)."),
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(metavar="PORT", min=0, max=65535, help="Port.")] = 8083,
    token: Annotated[
        str | None,
        typer.Option(
            metavar="TOKEN",
            envvar="MDP_SERVE_TOKEN",
            show_default=False,
            help="Bearer token every API call must carry (Authorization: Bearer TOKEN);"
            " the probes /health, /healthz and /readyz stay open.",
        ),
    ] = None,
    data_dir: Annotated[
        Path,
        typer.Option(
            "--data-dir",
            metavar="DIR",
            help="Inputs of runs must be under this directory (symlinks out are refused).",
        ),
    ] = Path("."),
    sink: Annotated[
        list[str] | None,
        typer.Option(
            "--sink",
            "-S",
            metavar="URL",
            help="Store runs may write to, repeatable; the first is the default and holds the"
            f" run records (table mdp_runs). \\[default: {DEFAULT_SINK}]",
        ),
    ] = None,
    bus: Annotated[
        str | None,
        typer.Option(
            metavar="URL", help="Feedback bus of every run (redis://...); unset: in-process."
        ),
    ] = None,
    max_runs: Annotated[
        int | None,
        typer.Option(
            "--max-runs",
            metavar="N",
            min=1,
            help="Runs at once; further requests get 429. \\[default: 4; 1 when the first"
            " --sink is SQLite, which takes one writer at a time]",
        ),
    ] = None,
    max_body: Annotated[
        int,
        typer.Option("--max-body", metavar="BYTES", min=1, help="Largest request body accepted."),
    ] = 64 * 1024,
    lease: Annotated[
        float,
        typer.Option(
            "--lease",
            metavar="SECONDS",
            min=1,
            help="Replicas sharing a store: how long a run stays this service's without a"
            " renewal before the others record it interrupted.",
        ),
    ] = 30.0,
    log_level: Annotated[
        str, typer.Option("--log-level", metavar="LEVEL", help="uvicorn's log level.")
    ] = "info",
) -> None:
    """Serve runs over HTTP: POST /v1/runs, /v1/replay/ticks, /healthz, /readyz, /metrics, /."""
    from .output import error_line

    try:
        config = _config(host, port, token, data_dir, sink, bus, max_runs, max_body, lease)
    except PipelineError as exc:
        error_line(str(exc))
        raise typer.Exit(exc.exit_code or EXIT_BAD_INPUT) from None
    import uvicorn

    from ..serve.app import create_app
    from ..serve.logs import log_config

    app = create_app(config)
    # asyncio's own loop, not uvloop (which the nats extra installs and uvicorn would pick): runs
    # are started with process_group=0, which uvloop's subprocesses do not take.
    uvicorn.run(
        app, host=host, port=port, log_level=log_level, log_config=log_config(), loop="asyncio"
    )


def default_max_runs(sink: str) -> int:
    """One run at a time into SQLite (a replay holds the writer for its whole transaction)."""
    from ..sinks.urls import parse_sink_url

    return 1 if parse_sink_url(sink).backend == "sqlite" else 4


def _config(
    host: str,
    port: int,
    token: str | None,
    data_dir: Path,
    sinks: list[str] | None,
    bus: str | None,
    max_runs: int | None,
    max_body: int,
    lease_s: float = 30.0,
) -> ServeConfig:
    from ..bus.urls import check_bus_url
    from ..errors import UsageError
    from ..extras import require_extra
    from ..serve.guards import ServeConfig, check_bind
    from ..serve.records import RunStore
    from ..sinks.urls import parse_sink_url

    require_extra("fastapi", "mdp serve")
    require_extra("uvicorn", "mdp serve")
    check_bind(host, token)
    if not data_dir.is_dir():
        raise UsageError(f"--data-dir {data_dir}: not a directory")
    urls = tuple(sinks or [DEFAULT_SINK])
    for url in urls:
        if parse_sink_url(url).backend == "postgresql":
            require_extra("psycopg", "a PostgreSQL sink (--sink postgresql://...)")
    RunStore(urls[0])  # refuses memory:// with the reason
    check_bus_url(bus)
    return ServeConfig(
        data_dir=data_dir.resolve(),
        sinks=urls,
        host=host,
        port=port,
        token=token or None,
        bus=bus,
        max_runs=max_runs or default_max_runs(urls[0]),
        max_body=max_body,
        lease_s=lease_s,
    )
