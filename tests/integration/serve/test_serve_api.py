"""``mdp serve`` against a real server process: runs, the replay API, cancel, limits, probes."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from serve_process import Client, OrchestratorClient, ServeProcess
from typer.testing import CliRunner

from market_data_pipeline import read_bars
from market_data_pipeline.cli.app import app

SLOW = {"input": "slow.csv", "speed": 10, "resolution": "1m"}


def mdp_run(*args: str) -> dict[str, Any]:
    """``mdp run ... --json`` in-process; its JSON summary."""
    result = CliRunner().invoke(app, ["run", *args, "--json"], catch_exceptions=False)
    return dict(json.loads(result.stdout))


def table(sink: str) -> pl.DataFrame:
    return read_bars(sink).sort("symbol", "resolution", "ts")


def test_orchestrator_replay_ends_success_with_the_bars_mdp_run_writes(
    serve: ServeProcess, data_dir: Path, tmp_path: Path
) -> None:
    orchestrator = OrchestratorClient(serve.client())
    started = orchestrator.start_replay(
        {"provider": "csv", "input": "ticks.csv", "resolution": "1m,5m", "speed": 0}
    )
    assert started["run_id"] and started["status"] in ("pending", "running", "success")
    done = orchestrator.wait(started["run_id"])
    assert done["status"] == "success", done
    assert done["error"] is None and done["exit_code"] == 0
    assert done["report"]["reconciled"] is True
    assert done["report"]["ticks_read"] == 6_000

    reference = f"sqlite:///{tmp_path / 'reference.db'}"
    summary = mdp_run("--input", str(data_dir / "ticks.csv"), "-r", "1m,5m", "--sink", reference)
    assert summary["exit_code"] == 0
    served = table(f"sqlite:///{tmp_path / 'runs.db'}")
    assert served.height == summary["bars_written"] > 0
    assert served.equals(table(reference))


def test_bad_file_fails_with_mdp_runs_one_line_reason(serve: ServeProcess, data_dir: Path) -> None:
    orchestrator = OrchestratorClient(serve.client())
    run_id = orchestrator.start_replay({"input": "bad.csv"})["run_id"]
    done = orchestrator.wait(run_id)
    expected = mdp_run("--input", str(data_dir / "bad.csv"), "--sink", "memory://bad")["error"]
    assert done["status"] == "failed"
    assert done["error"] == expected
    assert "\n" not in done["error"] and "row 3, field price" in done["error"]
    assert done["exit_code"] == 2
    assert orchestrator.posts == 1


INVALID: list[dict[str, Any]] = [
    {"input": "ticks.csv", "resolution": "7x"},
    {"input": "ticks.csv", "on_bad_row": "maybe"},
    {"ticks": 10, "grace": "soon"},
    {"ticks": 10, "speed": -1},
    {"input": "missing.csv"},
]


def test_invalid_settings_are_422_with_mdp_runs_message_and_create_nothing(
    serve: ServeProcess, data_dir: Path, tmp_path: Path
) -> None:
    for body in INVALID:
        _check_refused(serve.client(), data_dir, tmp_path, body)
    assert serve.client().get("/v1/runs").body["runs"] == []


def _check_refused(client: Client, data_dir: Path, tmp_path: Path, body: dict[str, Any]) -> None:
    answer = client.post("/v1/runs", body)
    assert answer.status == 422, answer.text
    assert answer.body["exit_code"] == 2
    # The same keys in a config file give `mdp run` its one-line error: the same text.
    config = tmp_path / "run.yaml"  # JSON is YAML
    keys = {**body, "sink": "memory://x"}
    if "input" in keys:
        keys["input"] = str(data_dir / keys["input"])
    config.write_text(json.dumps(keys), encoding="utf-8")
    assert answer.body["error"] == mdp_run("-c", str(config))["error"]
    assert "\n" not in answer.body["error"]


def test_unknown_setting_and_non_json_are_422(serve: ServeProcess) -> None:
    client = serve.client()
    unknown = client.post("/v1/runs", {"colour": "blue"})
    assert (unknown.status, unknown.body["error"]) == (422, "flags: unknown setting 'colour'")
    assert client.post("/v1/runs", raw=b"{not json").status == 422
    assert client.post("/v1/runs", [1, 2]).status == 422
    assert client.get("/v1/runs").body["runs"] == []


def test_duplicate_posts_start_one_replay(serve: ServeProcess) -> None:
    client = serve.client()
    first = client.post("/v1/replay/ticks", SLOW)
    assert first.status == 202
    again = [client.post("/v1/replay/ticks", SLOW) for _ in range(2)]
    assert [a.status for a in again] == [200, 200]
    assert {a.body["run_id"] for a in again} == {first.body["run_id"]}
    client.request("DELETE", f"/v1/runs/{first.body['run_id']}")
    client.wait_status(first.body["run_id"], ("cancelled",))
    keyed = [
        client.post("/v1/runs", {"ticks": 100, "seed": n}, headers={"Idempotency-Key": "k-1"})
        for n in range(2)
    ]
    assert [k.status for k in keyed] == [202, 200]
    assert keyed[0].body["id"] == keyed[1].body["id"]
    client.wait_status(keyed[0].body["id"], ("success",))
    assert len(client.get("/v1/runs").body["runs"]) == 2


def test_delete_stops_as_ctrl_c_does(serve: ServeProcess, tmp_path: Path) -> None:
    client = serve.client()
    run_id = client.post("/v1/runs", SLOW).body["id"]
    client.wait_progress(run_id, ticks=2_000)
    answer = client.request("DELETE", f"/v1/runs/{run_id}")
    assert answer.status == 202
    done = client.wait_status(run_id, ("cancelled", "failed", "success"))
    assert done["status"] == "cancelled", done
    assert done["exit_code"] == 130  # as `mdp run` stopped by Ctrl-C
    report = done["report"]
    assert report["stopped_by"] == "cancelled" and report["reconciled"] is True
    assert report["partial"]["rows_not_read"] > 0
    # Open windows were written and committed: every tick taken is in a stored bar.
    stored = table(f"sqlite:///{tmp_path / 'runs.db'}")
    assert stored.height == report["bars_written"] > 0
    assert int(stored["trades"].sum()) == report["ticks_admitted"]
    assert client.request("DELETE", f"/v1/runs/{run_id}").status == 409


def test_max_runs_refuses_with_429(tmp_path: Path, data_dir: Path) -> None:
    sink = f"sqlite:///{tmp_path / 'runs.db'}"
    with ServeProcess(
        tmp_path, "--data-dir", str(data_dir), "--sink", sink, "--max-runs", "1"
    ) as s:
        client = s.client()
        first = client.post("/v1/runs", SLOW)
        assert first.status == 202
        refused = client.post("/v1/runs", {"ticks": 10})
        assert refused.status == 429 and refused.headers.get("retry-after") == "1"
        assert "--max-runs 1" in refused.body["error"]
        assert len(client.get("/v1/runs").body["runs"]) == 1
        client.request("DELETE", f"/v1/runs/{first.body['id']}")
        client.wait_status(first.body["id"], ("cancelled",))
        assert client.post("/v1/runs", {"ticks": 10}).status == 202


def test_a_killed_run_fails_and_the_service_goes_on(serve: ServeProcess) -> None:
    client = serve.client()
    run = client.wait_progress(client.post("/v1/runs", SLOW).body["id"])
    os.kill(run["pid"], signal.SIGKILL)
    done = client.wait_status(run["id"], ("failed",))
    assert done["error"] == "the run's process died (signal 9) before it reported"
    assert client.get("/healthz").status == 200
    again = client.post("/v1/runs", {"ticks": 1_000, "resolution": "1s"}).body["id"]
    assert client.wait_status(again, ("success", "failed"))["status"] == "success"


def test_probes_and_metrics(serve: ServeProcess) -> None:
    client = serve.client()
    run_id = client.post("/v1/runs", {"ticks": 5_000, "resolution": "1s"}).body["id"]
    client.wait_status(run_id, ("success",))
    health = client.get("/health").body
    assert health["status"] == "ok" and health["service"] == "market-data-pipeline"
    assert client.get("/healthz").body["state"] == "healthy"
    assert client.get("/readyz").status == 200
    text = client.get("/metrics").text
    assert 'mdp_serve_runs{status="success"} 1.0' in text
    assert "mdp_ticks_total 5000.0" in text
    assert "mdp_bars_written_total" in text


def test_readyz_is_503_with_the_reason_when_a_store_is_down(tmp_path: Path, data_dir: Path) -> None:
    pytest.importorskip("psycopg")
    down = "postgresql://mdp:hunter2secret@127.0.0.1:1/market"
    sink = f"sqlite:///{tmp_path / 'runs.db'}"
    with ServeProcess(tmp_path, "--data-dir", str(data_dir), "--sink", sink, "--sink", down) as s:
        answer = s.client().get("/readyz")
        assert answer.status == 503
        assert answer.body["reason"].startswith("store postgresql://mdp:***@127.0.0.1:1/market")
        assert "hunter2secret" not in answer.text
        assert "hunter2secret" not in s.output()


def test_body_over_the_cap_is_413(tmp_path: Path, data_dir: Path) -> None:
    sink = f"sqlite:///{tmp_path / 'runs.db'}"
    with ServeProcess(
        tmp_path, "--data-dir", str(data_dir), "--sink", sink, "--max-body", "512"
    ) as s:
        client = s.client()
        big = {"ticks": 10, "symbols": ",".join(f"SYM{i}" for i in range(200))}
        assert client.post("/v1/runs", big).status == 413
        assert client.get("/v1/runs").body["runs"] == []


def test_replay_filters_count_what_they_leave_out(serve: ServeProcess, tmp_path: Path) -> None:
    orchestrator = OrchestratorClient(serve.client())
    body = {
        "input": "ticks.csv",
        "symbols": ["S1"],
        "start": "2024-01-02T09:01:00Z",
        "end": "2024-01-02T09:04:00Z",
    }
    done = orchestrator.wait(orchestrator.start_replay(body)["run_id"])
    assert done["status"] == "success", done
    report = done["report"]
    assert report["reconciled"] and report["ticks_read"] == 6_000
    reasons = report["bad_reasons"]
    assert reasons["not in the requested symbols"] == 3_000
    assert report["ticks_admitted"] == 900  # S1 ticks from 09:01 to 09:04: 3 min x 5/s
    stored = table(f"sqlite:///{tmp_path / 'runs.db'}")
    assert set(stored["symbol"]) == {"S1"} and stored.height == 3


def test_replay_list_and_unknown_run(serve: ServeProcess) -> None:
    client = serve.client()
    run_id = client.post("/v1/replay/ticks", {"input": "ticks.csv"}).body["run_id"]
    OrchestratorClient(client).wait(run_id)
    listed = client.get("/v1/replay/ticks").body["replays"]
    assert [r["run_id"] for r in listed] == [run_id]
    assert client.get("/v1/runs/nope").status == 404
    assert isinstance(Client(serve.port).get("/v1/runs").body["runs"], list)
