"""A real ``mdp serve`` process on a free port, and small HTTP clients for it.

``ServeProcess`` starts ``python -m market_data_pipeline.cli serve`` (uvicorn and all) as a child
process and waits until ``/healthz`` answers; tests talk to it over real sockets.
``OrchestratorClient`` is written against market-data-orchestrator's replay bundle: POST
``/v1/replay/ticks`` retried on any 4xx/5xx, then GET the status with a ``{}`` body until
``success`` or ``failed``.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from ports import free_port

T = TypeVar("T")
START_TIMEOUT_S = 60.0


def wait_for(check: Callable[[], T | None], timeout: float = 60.0, what: str = "a condition") -> T:
    """Poll ``check`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@dataclass
class Response:
    status: int
    body: Any
    text: str
    headers: dict[str, str]


class Client:
    """Plain HTTP/1.1 calls to the service; JSON in and out."""

    def __init__(self, port: int, token: str | None = None) -> None:
        self.port = port
        self.token = token

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        raw: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Response:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            sent = dict(headers or {})
            if self.token is not None:
                sent.setdefault("Authorization", f"Bearer {self.token}")
            data = raw if raw is not None else None if body is None else json.dumps(body).encode()
            if data is not None:
                sent.setdefault("Content-Type", "application/json")
            conn.request(method, path, body=data, headers=sent)
            answer = conn.getresponse()
            text = answer.read().decode("utf-8")
            try:
                parsed = json.loads(text) if text else None
            except json.JSONDecodeError:
                parsed = None
            return Response(answer.status, parsed, text, dict(answer.getheaders()))
        finally:
            conn.close()

    def get(self, path: str) -> Response:
        return self.request("GET", path)

    def post(self, path: str, body: Any = None, **kw: Any) -> Response:
        return self.request("POST", path, body, **kw)

    def run(self, run_id: str) -> dict[str, Any]:
        answer = self.get(f"/v1/runs/{run_id}")
        assert answer.status == 200, answer.text
        return dict(answer.body)

    def wait_status(
        self, run_id: str, statuses: tuple[str, ...], timeout: float = 120.0
    ) -> dict[str, Any]:
        def check() -> dict[str, Any] | None:
            run = self.run(run_id)
            return run if run["status"] in statuses else None

        return wait_for(check, timeout, f"run {run_id} to be {'/'.join(statuses)}")

    def wait_progress(self, run_id: str, ticks: int = 1, timeout: float = 120.0) -> dict[str, Any]:
        def check() -> dict[str, Any] | None:
            run = self.run(run_id)
            progress = run.get("progress") or {}
            if run["status"] == "running" and (progress.get("ticks") or 0) >= ticks:
                return run
            assert run["status"] in ("pending", "running"), run
            return None

        return wait_for(check, timeout, f"run {run_id} to take {ticks} ticks")


class OrchestratorClient:
    """What market-data-orchestrator 0.9.3's replay bundle does against the pipeline service."""

    def __init__(self, client: Client, *, retries: int = 3) -> None:
        self.client = client
        self.retries = retries
        self.posts = 0

    def start_replay(self, payload: dict[str, Any]) -> dict[str, Any]:
        for attempt in range(self.retries):
            self.posts += 1
            answer = self.client.request("POST", "/v1/replay/ticks", payload)
            if answer.status < 400:
                return dict(answer.body)
            if attempt == self.retries - 1:
                raise AssertionError(f"POST failed: {answer.status} {answer.text}")
        raise AssertionError("unreachable")

    def wait(self, run_id: str, timeout: float = 120.0) -> dict[str, Any]:
        """Poll like the bundle's ``wait`` job: GET with a ``{}`` body until success/failed."""

        def check() -> dict[str, Any] | None:
            answer = self.client.request("GET", f"/v1/replay/ticks/{run_id}", {})
            assert answer.status == 200, answer.text
            status = answer.body.get("status")
            return dict(answer.body) if status in ("success", "failed") else None

        return wait_for(check, timeout, f"replay {run_id} to end")


class ServeProcess:
    """``mdp serve`` in a child process; ``stop()`` ends it as Ctrl-C would, ``kill()`` with -9."""

    def __init__(
        self, workdir: Path, *args: str, token: str | None = None, port: int | None = None
    ) -> None:
        self.workdir = workdir
        self.port = port or free_port()
        self.args = args
        self.token = token
        self.log = workdir / f"serve-{self.port}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> ServeProcess:
        env = {**os.environ}
        if self.token is not None:
            env["MDP_SERVE_TOKEN"] = self.token
        cmd = [sys.executable, "-m", "market_data_pipeline.cli", "serve"]
        cmd += ["--port", str(self.port), *self.args]
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                cmd, cwd=self.workdir, stdout=out, stderr=subprocess.STDOUT, env=env
            )
        wait_for(self._ready, START_TIMEOUT_S, f"mdp serve on port {self.port}")
        return self

    def _ready(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"mdp serve exited {self.process.returncode}: {self.output()}")
        try:
            return Client(self.port).get("/healthz").status == 200
        except OSError:
            return False

    def client(self, token: str | None = None) -> Client:
        return Client(self.port, token if token is not None else self.token)

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def stop(self) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return int(self.process.returncode)

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait()

    def __enter__(self) -> ServeProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def pid_gone(pid: int) -> bool:
    """True once process ``pid`` has exited (and been reaped, or is a zombie)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().split(") ", 1)[1].startswith("Z")
    except OSError:
        return True
