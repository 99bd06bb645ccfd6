"""What ``mdp`` loads before its first row: what the command needs; collection resumed after."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest
from probes import probe

from market_data_pipeline.cli import startup

# Runs the console entry point in a fresh interpreter; reports the exit code, which of the given
# modules were imported and whether garbage collection is on again.
_PROBE = """
import gc, json, sys
from market_data_pipeline.cli.entry import main
watched = sys.argv[1].split(",")
sys.argv = ["mdp", *sys.argv[2:]]
try:
    main()
except SystemExit as exc:
    code = exc.code
loaded = sorted(m for m in watched if m in sys.modules)
print(json.dumps({"code": code, "loaded": loaded, "gc": gc.isenabled()}), file=sys.stderr)
"""

# Loaded only for the commands or options that use them.
UNNEEDED = (
    "redis",  # a Redis bus (--bus redis://...)
    "market_data_core.events",  # Core's codec and its Redis bus, used by the Redis bus only
    "market_data_contracts.cli",  # mdp contracts
    "psycopg",  # a PostgreSQL sink
    "nats",  # --source nats
    "rich",  # what is printed as text: a --json run off a terminal that logs nothing has none
)


def _probe(*args: str, cwd: Path) -> dict[str, object]:
    return probe(_PROBE, ",".join(UNNEEDED), *args, cwd=cwd, timeout_s=120)


@pytest.fixture
def trades(tmp_path: Path) -> Path:
    path = tmp_path / "trades.parquet"
    pl.DataFrame(
        {
            "symbol": ["AAA", "BBB"] * 50,
            "ts": [f"2024-01-02T14:30:{s // 2:02d}Z" for s in range(100)],
            "price": [100.0 + i / 100 for i in range(100)],
            "size": [1 + i % 7 for i in range(100)],
        }
    ).write_parquet(path)
    return path


def test_a_parquet_replay_into_sqlite_loads_no_bus_metrics_toolkit_or_rich(
    trades: Path, tmp_path: Path
) -> None:
    sink = f"sqlite:///{tmp_path / 'bars.db'}"
    result = _probe("run", "-i", str(trades), "-r", "1m", "-S", sink, "--json", cwd=tmp_path)
    assert result == {"code": 0, "loaded": [], "gc": True}


def test_a_synthetic_run_loads_none_of_them_either(tmp_path: Path) -> None:
    result = _probe("run", "-n", "1000", "-S", "memory://x", "--json", cwd=tmp_path)
    assert result == {"code": 0, "loaded": [], "gc": True}


def test_collection_resumes_for_other_commands(tmp_path: Path) -> None:
    result = _probe("bars", "-S", f"sqlite:///{tmp_path / 'none.db'}", cwd=tmp_path)
    assert result["gc"] is True
    assert result["code"] == 2


def test_a_text_summary_loads_rich(trades: Path, tmp_path: Path) -> None:
    sink = f"sqlite:///{tmp_path / 'bars.db'}"
    result = _probe("run", "-i", str(trades), "-r", "1m", "-S", sink, cwd=tmp_path)
    assert result == {"code": 0, "loaded": ["rich"], "gc": True}


def test_the_contracts_group_is_there_when_chosen(tmp_path: Path) -> None:
    result = _probe("contracts", "--help", cwd=tmp_path)
    assert result["code"] == 0
    assert result["loaded"] == ["market_data_contracts.cli", "rich"]


@pytest.fixture
def root_handlers() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_warnings_off_a_terminal_are_plain_masked_lines(
    root_handlers: None, capsys: pytest.CaptureFixture[str]
) -> None:
    from market_data_pipeline.cli.output import RunView

    RunView(json_mode=True, interactive=False)
    logging.getLogger("mdp.test").info("not shown")
    logging.getLogger("mdp.test").warning("store postgresql://u:secret@h/db is down")
    logging.getLogger("mdp.test").warning("retrying")
    assert capsys.readouterr().err == (
        "WARNING: store postgresql://u:***@h/db is down\nWARNING: retrying\n"
    )


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, {"OPENBLAS_NUM_THREADS": "1"}),
        ({"OPENBLAS_NUM_THREADS": "4"}, {"OPENBLAS_NUM_THREADS": "4"}),
        ({"OMP_NUM_THREADS": "2"}, {"OMP_NUM_THREADS": "2"}),  # OpenBLAS reads it: left alone
        ({"GOTO_NUM_THREADS": "3"}, {"GOTO_NUM_THREADS": "3"}),
    ],
)
def test_one_blas_thread_unless_the_environment_chose(
    environ: dict[str, str], expected: dict[str, str]
) -> None:
    startup.one_blas_thread(environ)
    assert environ == expected


@pytest.mark.parametrize(
    ("environ", "modules", "expected"),
    [
        ({}, {}, {"POLARS_MAX_THREADS": "1"}),
        ({"POLARS_MAX_THREADS": "4"}, {}, {"POLARS_MAX_THREADS": "4"}),  # the user's
        ({}, {"polars": object()}, {}),  # loaded already: too late to choose
    ],
)
def test_one_polars_thread_unless_chosen(
    environ: dict[str, str], modules: dict[str, object], expected: dict[str, str]
) -> None:
    startup.one_polars_thread(environ, modules)
    assert environ == expected


# Reports the size of the polars pool a command ran with.
_POOL_PROBE = """
import json, sys
from market_data_pipeline.cli.entry import main
sys.argv = ["mdp", *sys.argv[1:]]
try:
    main()
except SystemExit as exc:
    code = exc.code
import polars
print(json.dumps({"code": code, "threads": polars.thread_pool_size()}), file=sys.stderr)
"""


@pytest.mark.parametrize("source", ["replay", "synthetic"])
def test_a_run_uses_one_polars_thread(source: str, trades: Path, tmp_path: Path) -> None:
    sink = f"sqlite:///{tmp_path / 'bars.db'}"
    what = ("-i", str(trades)) if source == "replay" else ("--symbols", "A,B", "-n", "5000")
    args = ("run", *what, "-r", "1m", "-S", sink, "--json")
    result = probe(_POOL_PROBE, *args, cwd=tmp_path, timeout_s=120)
    assert result == {"code": 0, "threads": 1}


# A service's run process, given no run: it has loaded the pipeline (polars too) by then.
_WORKER_POOL_PROBE = """
import json, os, sys
os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
from market_data_pipeline.serve import worker
code = worker.main()
import polars
print(json.dumps({"code": code, "threads": polars.thread_pool_size()}), file=sys.stderr)
"""


def test_a_service_run_process_uses_one_polars_thread(tmp_path: Path) -> None:
    result = probe(_WORKER_POOL_PROBE, cwd=tmp_path, timeout_s=120)
    assert result == {"code": 0, "threads": 1}
