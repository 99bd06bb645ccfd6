"""``mdp run`` end to end through its command line: exit codes, summary, idempotence, bad input."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
from metrics_page import metric
from ports import free_port
from waiting import wait_while_running

from market_data_pipeline.sinks import read_bars

from .conftest import Mdp, write_trades_csv


def test_synthetic_run_reconciles_and_stores_every_bar(mdp: Mdp, tmp_path: Path) -> None:
    db = tmp_path / "bars.db"
    code, summary = mdp.run_json(
        "--ticks", "50000", "--resolution", "1s,1m", "--sink", f"sqlite:///{db}", "--seed", "7"
    )
    assert code == 0, summary
    assert summary["reconciled"] is True
    assert summary["ticks_read"] == 50_000
    for stats in summary["resolutions"].values():
        assert stats["ticks_in"] == stats["ticks_in_bars"] == 50_000
    stored = read_bars(f"sqlite:///{db}")
    assert stored.height == summary["bars_written"] == summary["bars_built"] > 0
    assert set(stored["resolution"].unique()) == {"1s", "1m"}


def test_replay_twice_leaves_the_table_identical(mdp: Mdp, tmp_path: Path) -> None:
    csv = write_trades_csv(tmp_path / "trades.csv", 3_000)
    sink = f"sqlite:///{tmp_path / 'bars.db'}"
    code1, first = mdp.run_json("--input", str(csv), "--sink", sink)
    table1 = read_bars(sink).sort(["symbol", "resolution", "ts_ns"])
    code2, second = mdp.run_json("--input", str(csv), "--sink", sink)
    table2 = read_bars(sink).sort(["symbol", "resolution", "ts_ns"])
    assert code1 == code2 == 0
    assert first["bars_written"] == second["bars_written"] == table1.height == 50
    assert table1.equals(table2)


@pytest.mark.postgres
def test_replay_into_postgres_is_idempotent(mdp: Mdp, tmp_path: Path, postgres_url: str) -> None:
    csv = write_trades_csv(tmp_path / "trades.csv", 3_000)
    code1, _ = mdp.run_json("--input", str(csv), "--sink", postgres_url, "--resolution", "1m,5m")
    table1 = read_bars(postgres_url).sort(["symbol", "resolution", "ts_ns"])
    code2, _ = mdp.run_json("--input", str(csv), "--sink", postgres_url, "--resolution", "1m,5m")
    table2 = read_bars(postgres_url).sort(["symbol", "resolution", "ts_ns"])
    assert code1 == code2 == 0
    assert table1.height == 50 + 10
    assert table1.equals(table2)


def test_bad_row_fails_with_one_line_and_writes_nothing(mdp: Mdp, tmp_path: Path) -> None:
    csv = write_trades_csv(tmp_path / "trades.csv", 20_000)  # ~166 minutes of bars before it
    with csv.open("a") as fh:
        fh.write("AAA,1704196000000,not-a-price,3\n")
    sink = f"sqlite:///{tmp_path / 'bars.db'}"
    result = mdp("run", "--input", str(csv), "--sink", sink)
    assert result.exit_code == 2
    message = result.stderr.strip()
    assert len(message.splitlines()) == 1, message
    assert "trades.csv" in message and "row 20002" in message and "price" in message
    assert "Traceback" not in result.output
    assert read_bars(sink).height == 0


def test_bad_rows_skipped_are_counted(mdp: Mdp, tmp_path: Path) -> None:
    csv = write_trades_csv(tmp_path / "trades.csv", 1_000)
    with csv.open("a") as fh:
        fh.write("AAA,1704186100000,-5,3\n")
        fh.write("BBB,,101.0,3\n")
    code, summary = mdp.run_json(
        "--input", str(csv), "--sink", f"sqlite:///{tmp_path / 'b.db'}", "--on-bad-row", "skip"
    )
    assert code == 0, summary
    assert summary["bad_rows"] == 2
    assert summary["ticks_read"] == 1_002
    assert summary["resolutions"]["1m"]["ticks_in_bars"] == 1_000
    assert summary["reconciled"] is True


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--sink", "mongodb://localhost/x", "--ticks", "10"], "mongodb"),
        (["--resolution", "5x", "--ticks", "10"], "resolution"),
        (["--input", "does/not/exist.csv"], "does/not/exist.csv"),
        (["--grace", "soon", "--ticks", "10"], "grace"),
        (["--kind", "bars", "--ticks", "10"], "synthetic"),
    ],
)
def test_usage_errors_exit_2_with_a_clear_line(
    mdp: Mdp, tmp_path: Path, args: list[str], needle: str
) -> None:
    os.chdir(tmp_path)
    result = mdp("run", *args)
    assert result.exit_code == 2, result.output
    assert needle in result.stderr
    assert "Traceback" not in result.output


def test_unreachable_database_exits_1_without_password(mdp: Mdp, tmp_path: Path) -> None:
    url = "postgresql://alice:s3cret@127.0.0.1:1/market"
    result = mdp("run", "--ticks", "100", "--sink", url)
    assert result.exit_code == 1
    assert "127.0.0.1:1" in result.stderr
    assert "s3cret" not in result.output
    assert "Traceback" not in result.output


def test_config_file_env_and_flags_merge_with_flags_winning(mdp: Mdp, tmp_path: Path) -> None:
    config = tmp_path / "mdp.toml"
    config.write_text('ticks = 1000\nresolution = "1m"\nsink = "sqlite:///ignored.db"\n')
    sink = f"sqlite:///{tmp_path / 'env.db'}"
    code, summary = mdp.run_json(
        "--config", str(config), "--resolution", "1s", env={"MDP_SINK": sink}
    )
    assert code == 0
    assert summary["ticks_read"] == 1_000
    assert list(summary["resolutions"]) == ["1s"]
    assert summary["sink"] == sink


def test_unknown_config_key_is_refused(mdp: Mdp, tmp_path: Path) -> None:
    config = tmp_path / "mdp.yaml"
    config.write_text("tiks: 10\n")
    result = mdp("run", "--config", str(config))
    assert result.exit_code == 2
    assert "tiks" in result.stderr


def test_human_summary_names_the_reconciliation(mdp: Mdp, tmp_path: Path) -> None:
    result = mdp("run", "--ticks", "2000", "--sink", f"sqlite:///{tmp_path / 'h.db'}")
    assert result.exit_code == 0
    assert "reconciled" in result.stdout
    assert "mdp bars" in result.stdout


def test_ctrl_c_flushes_open_windows_and_exits_130(tmp_path: Path) -> None:
    """SIGINT mid-run: the open 1m windows are written, the summary reconciles, exit 130."""
    db = tmp_path / "sig.db"
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "market_data_pipeline.cli",
            "run",
            "--rate",
            "2000",
            "--duration",
            "120",
            "--resolution",
            "1m",
            "--sink",
            f"sqlite:///{db}",
            "--metrics-port",
            str(port),
            "--json",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    # Interrupt once ticks flow (what the metrics endpoint shows), not after a fixed time: on a
    # loaded machine the run may not have read a tick yet.
    wait_while_running(proc, lambda: (metric(port, "mdp_ticks_total") or 0) > 0, "ticks", 90)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    summary = json.loads(out)
    assert summary["stopped_by"] == "SIGINT"
    assert summary["ticks_read"] > 0
    assert summary["reconciled"] is True
    stored = read_bars(f"sqlite:///{db}")
    assert stored.height == summary["bars_written"] > 0
    assert int(stored["trades"].sum()) == summary["resolutions"]["1m"]["ticks_in_bars"]
    assert stored.filter(pl.col("trades") == 0).height == 0


def test_metrics_port_in_use_is_a_usage_error(mdp: Mdp, tmp_path: Path) -> None:

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = mdp(
            "run",
            "--ticks",
            "10",
            "--metrics-port",
            str(port),
            "--sink",
            f"sqlite:///{tmp_path / 'm.db'}",
        )
    assert result.exit_code == 2
    assert str(port) in result.stderr
    assert "Traceback" not in result.output


def test_config_that_is_not_utf8_is_a_usage_error(mdp: Mdp, tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_bytes(b"\xff\xfe")
    result = mdp("run", "--config", str(config))
    assert result.exit_code == 2
    assert "UTF-8" in result.stderr


def test_input_with_synthetic_source_is_refused(mdp: Mdp, tmp_path: Path) -> None:
    csv = write_trades_csv(tmp_path / "t.csv", 10)
    result = mdp("run", "--source", "synthetic", "--input", str(csv))
    assert result.exit_code == 2
    assert "--input" in result.stderr


def test_grace_as_a_number_of_seconds_in_a_config_file(mdp: Mdp, tmp_path: Path) -> None:
    config = tmp_path / "mdp.yaml"
    config.write_text(f"grace: 1.5\nticks: 100\nsink: sqlite:///{tmp_path / 'g.db'}\n")
    code, summary = mdp.run_json("--config", str(config))
    assert code == 0, summary
