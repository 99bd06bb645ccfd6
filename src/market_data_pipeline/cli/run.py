"""``mdp run``: flags, config file and ``MDP_*`` variables in; progress, summary, exit code out."""

from __future__ import annotations

import inspect
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ..defaults import DEFAULT_SINK
from ..errors import EXIT_BAD_INPUT, PipelineError
from ..settings_spec import OUTPUT, SETTINGS
from . import startup
from .options import context_parameter, given_flags, parameters, with_parameters
from .signals import STOP, StopSignals

if TYPE_CHECKING:
    from ..config import RunSettings
    from ..report import RunReport
    from .output import RunView

EXAMPLES = """[bold]Examples[/]

  mdp run                                            [dim]# 10 s synthetic demo into ./mdp.db[/]

  mdp run -n 1000000 -r 1m,5m --json

  mdp run --input 'data/trades-*.csv' --sink postgresql://localhost/market

  mdp run -i day1.parquet -i day2.parquet -i archive/ --on-late fail
  [dim]# several files and directories, merged in event time[/]

  mdp run -i spy_1m.parquet --kind bars -s SPY -r 1h

  mdp run -i 'data/*.parquet' --sink postgresql://localhost/market --resume
  [dim]# checkpoints as it goes; after a crash the same command continues[/]

  mdp run --bus redis://localhost:6379/0 --feedback-stream 'mdp:mdp.telemetry.feedback'
  [dim]# obey market-data-store's FeedbackPublisherService[/]

  mdp run --source nats --stream TICKS --durable worker-1 --idle-timeout 5
  [dim]# consume ticks published with `mdp publish --stream TICKS`[/]

  mdp run -c run.toml                                [dim]# resolution = ["1m", "5m"][/]

Every flag can also come from --config FILE (TOML or YAML, keys like on_bad_row) or from an
MDP_ variable (MDP_SINK, MDP_RESOLUTION, ...); flags win over both.
Ctrl-C stops at the next safe point: open windows are flushed and written before exit.
Exit codes: 0 success, 1 the run failed or lost data, 2 bad input or usage,
130/143 stopped by SIGINT/SIGTERM (open windows written; a replay says it is partial: rows
not read and the last event time committed).
"""

RUN_SETTINGS = tuple(setting.key for setting in SETTINGS)


def run_command(ctx: typer.Context, config: Path | None, **values: Any) -> None:
    """Build bars from a synthetic or replayed stream and write them to a store."""
    flags = given_flags(ctx)
    flags.pop("config", None)
    if ctx.args:
        from .precheck import extra_arguments_error

        raise typer.Exit(_failed_before_start(flags, extra_arguments_error("mdp run", ctx.args)))
    for name in ("feedback_stream", "input"):
        if name in flags:
            flags[name] = tuple(flags[name])
    # Signals are requests from here on: settings, imports, the run and its summary all finish.
    with STOP.held() as signals:
        code = _run(config, flags, signals)
    raise typer.Exit(code)


_CONFIG = inspect.Parameter(
    "config",
    inspect.Parameter.KEYWORD_ONLY,
    annotation=Annotated[
        Path | None,
        typer.Option(
            "--config",
            "-c",
            metavar="FILE",
            help="Settings file (TOML or YAML); MDP_ variables and flags override it.",
            rich_help_panel=OUTPUT,
        ),
    ],
    default=None,
)
# The settings in table order, --config beside --json in the Output panel.
with_parameters(
    run_command,
    [
        context_parameter(),
        *parameters(k for k in RUN_SETTINGS if k != "json"),
        _CONFIG,
        *parameters(["json"]),
    ],
)


def _run(config: Path | None, flags: dict[str, Any], signals: StopSignals) -> int:
    from . import output
    from .precheck import precheck_run

    try:
        # URLs and files first, at stdlib cost; only a run that can start imports the rest.
        precheck_run(config, os.environ, flags)
        from ..config import load_settings

        settings = load_settings(config_file=config, environ=os.environ, flags=flags)
    except PipelineError as exc:
        return _failed_before_start(flags, exc)
    startup.one_polars_thread()  # before polars loads (``_execute``)
    from .. import eventloop

    view = output.RunView(json_mode=settings.json_output, interactive=sys.stderr.isatty())
    report = eventloop.run(_execute(settings, view, signals), source=settings.source)
    view.summary(report)
    return report.exit_code  # a signal's 130/143 included: the report and the process agree


def _failed_before_start(flags: dict[str, Any], exc: PipelineError) -> int:
    """Report a run that could not start, as text or (``--json``) as the one report shape."""
    from ..report import failed_before_start
    from . import output
    from .precheck import raw_setting

    json_mode = str(raw_setting("json", flags, os.environ) or "").lower() in _TRUE
    sink = str(raw_setting("sink", flags, os.environ) or DEFAULT_SINK)
    output.RunView(json_mode=json_mode, interactive=False).summary(failed_before_start(sink, exc))
    return exc.exit_code or EXIT_BAD_INPUT


_TRUE = ("1", "true", "yes", "on")


async def _execute(settings: RunSettings, view: RunView, signals: StopSignals) -> RunReport:
    # Imported only now: loading polars, pyarrow and Core takes a while; a signal meanwhile is
    # recorded and stops the pipeline as soon as it starts.
    import asyncio

    from ..runtime import Pipeline, execute

    signals.reassert()  # polars hooked SIGINT on import: no query may turn it into an exception

    def started(pipeline: Pipeline) -> None:
        signals.reassert()  # and so may a store driver or a source's client, loaded since
        startup.release()  # every module the run needs is loaded: collect from here on
        signals.forward_to(asyncio.get_running_loop(), pipeline.request_stop)
        view.start(pipeline)

    try:
        return await execute(settings, on_start=started)
    finally:
        signals.detach()
        view.stop()
