"""Runs outlive the service: history kept, unfinished runs interrupted, resumable ones resumed."""

from __future__ import annotations

import socket
import sqlite3
from pathlib import Path

import polars as pl
import pytest
from serve_process import Client, ServeProcess, pid_gone, wait_for
from typer.testing import CliRunner

from market_data_pipeline import read_bars
from market_data_pipeline.cli.app import app


def _checkpoint_position(db: Path) -> int:
    try:
        with sqlite3.connect(db) as conn:
            row = conn.execute("SELECT MAX(position) FROM mdp_checkpoints").fetchone()
    except sqlite3.OperationalError:  # not created yet
        return 0
    return int(row[0] or 0)


def test_restart_mid_run_marks_it_interrupted_and_resume_completes_it(
    tmp_path: Path, data_dir: Path
) -> None:
    db = tmp_path / "runs.db"
    args = ("--data-dir", str(data_dir), "--sink", f"sqlite:///{db}")
    body = {
        "input": "slow.csv",
        "speed": 20,
        "resolution": "1m",
        "resume": True,
        "checkpoint_interval": 0.2,
    }
    first = ServeProcess(tmp_path, *args).start()
    client = first.client()
    done_before = client.post("/v1/runs", {"ticks": 100}).body["id"]
    client.wait_status(done_before, ("success",))
    run = client.wait_progress(client.post("/v1/runs", body).body["id"], ticks=1_000)
    wait_for(lambda: _checkpoint_position(db) > 0, what="a committed checkpoint")
    first.kill()  # kill -9: the service cannot tell anyone
    # Its run notices the service is gone, writes its windows and ends by itself.
    wait_for(lambda: pid_gone(run["pid"]), what="the orphaned run to stop")

    # The same service started again (same host and port): the killed one's runs are its own.
    with ServeProcess(tmp_path, *args, port=first.port) as second:
        client = second.client()
        history = {r["id"]: r for r in client.get("/v1/runs").body["runs"]}
        assert history[done_before]["status"] == "success"
        assert history[run["id"]]["status"] == "interrupted"
        assert "service stopped" in history[run["id"]]["error"]
        resumed = client.post(f"/v1/runs/{run['id']}/resume", {"speed": None})
        assert resumed.status == 202, resumed.text
        assert resumed.body["resumed_from"] == run["id"]
        done = client.wait_status(resumed.body["id"], ("success", "failed"), timeout=300)
        assert done["status"] == "success", done
        assert done["report"]["source"]["resumed_rows"] > 0
        assert client.post(f"/v1/runs/{done_before}/resume").status == 409

    reference = f"sqlite:///{tmp_path / 'reference.db'}"
    result = CliRunner().invoke(
        app, ["run", "-i", str(data_dir / "slow.csv"), "-r", "1m", "-S", reference, "--json"]
    )
    assert result.exit_code == 0, result.output
    served = read_bars(f"sqlite:///{db}").filter(pl.col("resolution") == "1m")
    served = served.filter(pl.col("symbol").is_in(["S0", "S1"])).sort("symbol", "ts")
    assert served.equals(read_bars(reference).sort("symbol", "ts"))


@pytest.mark.postgres
def test_run_records_in_postgresql_and_no_password_leaks(
    tmp_path: Path, data_dir: Path, postgres_url: str
) -> None:
    import psycopg

    secret = "s3cret-pw-77"
    sink = postgres_url.replace("postgres@", f"postgres:{secret}@", 1)
    with ServeProcess(tmp_path, "--data-dir", str(data_dir), "--sink", sink) as s:
        client = s.client()
        run_id = client.post("/v1/replay/ticks", {"input": "ticks.csv"}).body["run_id"]
        done = client.wait_status(run_id, ("success", "failed"))
        assert done["status"] == "success", done
        texts = [client.get(p).text for p in ("/v1/runs", f"/v1/runs/{run_id}", "/health")]
        texts += [client.get("/metrics").text, client.get("/readyz").text]
        assert all(secret not in text for text in texts)
        assert "postgres:***@" in texts[1]
    assert secret not in s.output()
    with psycopg.connect(postgres_url) as conn:
        row = conn.execute("SELECT status, exit_code FROM mdp_runs WHERE id = %s", (run_id,))
        assert row.fetchone() == ("success", 0)
        assert conn.execute("SELECT COUNT(*) FROM bars").fetchone() == (
            done["report"]["bars_written"],
        )


SLOW = {"input": "slow.csv", "speed": 10, "resolution": "1m"}


def _ticks(client: Client, run_id: str) -> int:
    return int((client.run(run_id).get("progress") or {}).get("ticks") or 0)


@pytest.mark.postgres
def test_replicas_sharing_a_store_interrupt_only_runs_whose_service_is_gone(
    tmp_path: Path, data_dir: Path, postgres_url: str
) -> None:
    args = ("--data-dir", str(data_dir), "--sink", postgres_url, "--lease", "2")
    first = ServeProcess(tmp_path, *args).start()
    try:
        run = first.client().wait_progress(first.client().post("/v1/runs", SLOW).body["id"])
        with ServeProcess(tmp_path, *args) as second:
            other = second.client()
            seen = other.run(run["id"])
            assert seen["status"] == "running", seen  # a replica's start leaves it alone
            assert seen["owner"] == f"{socket.gethostname()}:{first.port}"
            retried = other.post("/v1/runs", SLOW)  # a client's retry reaching the other replica
            assert retried.status == 200 and retried.body["id"] == run["id"]
            # More than a lease later (by the run's own progress), it is still first's.
            ticks = _ticks(first.client(), run["id"])
            wait_for(
                lambda: _ticks(first.client(), run["id"]) > ticks + 1_000, what="a run's progress"
            )
            assert other.run(run["id"])["status"] == "running"
            refused = other.request("DELETE", f"/v1/runs/{run['id']}")
            assert refused.status == 409 and str(first.port) in refused.body["error"]
            first.kill()  # gone without a word: its lease runs out, and second notices
            gone = other.wait_status(run["id"], ("interrupted",), timeout=60)
            assert "service stopped" in gone["error"]
    finally:
        if first.process is not None and first.process.poll() is None:
            first.kill()


def test_a_poll_answers_alike_from_memory_and_from_the_store(
    tmp_path: Path, data_dir: Path
) -> None:
    args = ("--data-dir", str(data_dir), "--sink", f"sqlite:///{tmp_path / 'runs.db'}")
    with ServeProcess(tmp_path, *args) as first:
        run_id = first.client().post("/v1/replay/ticks", {"input": "ticks.csv"}).body["run_id"]
        first.client().wait_status(run_id, ("success",))
        paths = (f"/v1/runs/{run_id}", f"/v1/replay/ticks/{run_id}")
        in_memory = [first.client().get(path).body for path in paths]
    with ServeProcess(tmp_path, *args, port=first.port) as second:  # ended runs: the store's
        from_store = [second.client().get(path).body for path in paths]
    for memory, store in zip(in_memory, from_store, strict=True):
        # Memory keeps the last live progress (event time, queue) beside the report's figures.
        assert {**memory, "progress": None} == {**store, "progress": None}
