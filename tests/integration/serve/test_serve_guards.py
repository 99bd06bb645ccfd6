"""What a request may not do: read outside the data directory, pick a sink, skip the token."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from serve_process import ServeProcess
from typer.testing import CliRunner

from market_data_pipeline.cli.app import app

FORBIDDEN: list[dict[str, Any]] = [
    {"input": "/etc/passwd"},
    {"input": "../outside.csv"},
    {"input": "sub/../../outside.csv"},
    {"input": "link.csv"},
    {"input": ["ticks.csv", "linkdir"]},
    {"input": "ticks.csv", "sink": "sqlite:////tmp/elsewhere.db"},
    {"input": "ticks.csv", "sink": "postgresql://u:pw@db.example/other"},
    {"ticks": 10, "bus": "redis://127.0.0.1:6379/0"},
    {"ticks": 10, "metrics_port": 9108},
]


def test_paths_and_sinks_outside_the_allowed_ones_are_403(
    serve: ServeProcess, data_dir: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "outside.csv"
    outside.write_text((data_dir / "ticks.csv").read_text())
    (data_dir / "link.csv").symlink_to(outside)
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "t.csv").write_text(outside.read_text())
    (data_dir / "linkdir").symlink_to(tmp_path / "elsewhere")
    client = serve.client()
    for body in FORBIDDEN:
        for path in ("/v1/runs", "/v1/replay/ticks"):
            answer = client.post(path, body)
            assert answer.status == 403, (body, answer.text)
            assert "pw@" not in answer.text
    assert client.get("/v1/runs").body["runs"] == []
    assert not Path("/tmp/elsewhere.db").exists()
    other = client.get("/v1/bars/series?sink=postgresql://u:pw-9z@db/x")
    assert other.status == 403 and "pw-9z" not in other.text
    assert "pw-9z" not in serve.output()  # uvicorn's access log masks the query too


def test_absolute_path_inside_the_data_dir_is_allowed(serve: ServeProcess, data_dir: Path) -> None:
    client = serve.client()
    answer = client.post("/v1/runs", {"input": str(data_dir / "ticks.csv")})
    assert answer.status == 202, answer.text
    assert client.wait_status(answer.body["id"], ("success", "failed"))["status"] == "success"


def test_token_is_required_when_set(tmp_path: Path, data_dir: Path) -> None:
    sink = f"sqlite:///{tmp_path / 'runs.db'}"
    with ServeProcess(tmp_path, "--data-dir", str(data_dir), "--sink", sink, token="t0ken-s3") as s:
        anonymous = s.client(token="")
        anonymous.token = None
        for method, path in (("POST", "/v1/runs"), ("GET", "/v1/runs"), ("GET", "/metrics")):
            answer = anonymous.request(method, path, {"ticks": 10} if method == "POST" else None)
            assert answer.status == 401, (path, answer.text)
            assert answer.headers.get("www-authenticate") == "Bearer"
        assert s.client(token="wrong").post("/v1/runs", {"ticks": 10}).status == 401
        assert anonymous.get("/healthz").status == 200  # probes stay open
        assert anonymous.get("/readyz").status == 200
        assert anonymous.get("/v1/runs").status == 401
        ok = s.client().post("/v1/runs", {"ticks": 10})
        assert ok.status == 202
        # A run in memory is polled past the routes (serve/polls.py): the token still counts.
        for path in (f"/v1/runs/{ok.body['id']}", f"/v1/replay/ticks/{ok.body['id']}"):
            for client in (anonymous, s.client(token="wrong")):
                assert client.get(path).status == 401, path
            assert s.client().get(path).body["id"] == ok.body["id"]
        assert "t0ken-s3" not in s.output()


def test_refuses_to_listen_beyond_loopback_without_a_token(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["serve", "--host", "0.0.0.0", "--data-dir", str(tmp_path)])
    assert result.exit_code == 2
    assert "refusing to listen on 0.0.0.0 without a token" in result.output
