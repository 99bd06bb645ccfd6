"""The HTTP service: the run API, the orchestrator's replay API, probes, metrics and the page.

POST   /v1/runs                  any `mdp run` setting by its config key -> 202 and the run
GET    /v1/runs[/{id}]           status, live progress, and at the end report and exit code
DELETE /v1/runs/{id}             stop as Ctrl-C does -> cancelled
POST   /v1/runs/{id}/resume      continue a resumable replay from its checkpoint
GET    /v1/runs/{id}/history     progress samples (throughput, level, scale) for the page
POST   /v1/replay/ticks          the same runs in market-data-orchestrator's shape
GET    /v1/replay/ticks[/{id}]   {run_id, status, error, ...}
GET    /v1/bars, /v1/bars/series stored bars of one symbol and resolution; what is stored
GET    /health /healthz /readyz /metrics, and the page at /
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources
from importlib.metadata import version
from typing import Any

from fastapi import Depends, FastAPI, Header, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, Gauge, generate_latest

from .. import metrics
from ..errors import PipelineError
from ..urls import mask_urls, redact_url
from .guards import BodyLimit, ForbiddenError, ServeConfig, token_ok
from .manager import ConflictError, NotFoundError, RunManager, TooManyRunsError
from .polls import StatusPolls
from .readiness import check_ready

log = logging.getLogger(__name__)

RUNS = Gauge(
    "mdp_serve_runs",
    "Runs recorded by the service, by status.",
    ["status"],
    registry=metrics.REGISTRY,
)
SERVICE = "market-data-pipeline"


def render_json(content: Any) -> bytes:
    """JSON whose every URL-like word has its password masked: no secret leaves the service."""
    return mask_urls(json.dumps(content, default=str)).encode("utf-8")


class MaskedJSONResponse(JSONResponse):
    """A response rendered by ``render_json``."""

    def render(self, content: Any) -> bytes:
        return render_json(content)


def create_app(config: ServeConfig) -> FastAPI:
    """Build the service for ``config`` (``mdp serve`` runs it with uvicorn)."""
    manager = RunManager(config)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await manager.start()
        try:
            yield
        finally:
            await manager.stop()

    app = FastAPI(
        title="mdp serve",
        version=version(SERVICE),
        lifespan=lifespan,
        default_response_class=MaskedJSONResponse,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.manager = manager
    app.add_middleware(BodyLimit, limit=config.max_body)
    # Added last, so it runs first: polls of runs in memory skip the rest of the stack.
    app.add_middleware(
        StatusPolls,
        manager=manager,
        config=config,
        views={"/v1/runs/": _run_view, "/v1/replay/ticks/": _replay_view},
        render=render_json,
    )
    _error_handlers(app)
    _probe_routes(app, manager, config)
    _run_routes(app, manager, config)
    _page_routes(app, config)
    return app


def _auth(config: ServeConfig) -> Any:
    async def check(authorization: str | None = Header(default=None)) -> None:
        if not token_ok(config.token, authorization):
            raise _Unauthorized

    return Depends(check)


class _Unauthorized(Exception):
    pass


def _error(status: int, message: str, **extra: Any) -> MaskedJSONResponse:
    return MaskedJSONResponse({"error": mask_urls(message), **extra}, status_code=status)


def _error_handlers(app: FastAPI) -> None:
    statuses: list[tuple[type[Exception], int]] = [
        (ForbiddenError, 403),
        (NotFoundError, 404),
        (ConflictError, 409),
        (TooManyRunsError, 429),
    ]
    for cls, status in statuses:
        app.add_exception_handler(cls, _handler(status))

    async def usage(_request: Request, exc: Exception) -> Response:
        # Any other PipelineError here is a refused request: mdp run's one line, exit code 2.
        code = getattr(exc, "exit_code", 2)
        return _error(422, str(exc), exit_code=code)

    async def unauthorized(_request: Request, _exc: Exception) -> Response:
        response = _error(401, "missing or wrong bearer token (Authorization: Bearer TOKEN)")
        response.headers["WWW-Authenticate"] = "Bearer"
        return response

    async def malformed(_request: Request, exc: Exception) -> Response:
        errors = exc.errors() if isinstance(exc, RequestValidationError) else []
        first = errors[0] if errors else {"msg": "malformed request"}
        return _error(422, f"invalid request: {first.get('msg')}", exit_code=2)

    app.add_exception_handler(PipelineError, usage)
    app.add_exception_handler(_Unauthorized, unauthorized)
    app.add_exception_handler(RequestValidationError, malformed)


def _handler(status: int) -> Any:
    async def handle(_request: Request, exc: Exception) -> Response:
        response = _error(status, str(exc))
        if status == 429:
            response.headers["Retry-After"] = "1"
        return response

    return handle


async def _json_body(request: Request) -> Any:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise PipelineError("invalid settings: the body is not JSON") from None


def _probe_routes(app: FastAPI, manager: RunManager, config: ServeConfig) -> None:
    @app.get("/health")
    async def health() -> dict[str, Any]:
        active = sum(r.record.status in ("pending", "running") for r in manager.live.values())
        return {
            "status": "ok",
            "service": SERVICE,
            "version": version(SERVICE),
            "runs_active": active,
            "max_runs": config.max_runs,
            "sinks": [redact_url(s) for s in config.sinks],
        }

    @app.get("/healthz")
    async def healthz() -> dict[str, Any]:
        # Core's HealthStatus shape, as market-data-store answers: alive means the loop answers.
        return {
            "service": SERVICE,
            "state": "healthy",
            "components": [{"name": "api", "state": "healthy", "details": {}}],
            "version": version(SERVICE),
            "ts": asyncio.get_running_loop().time(),
        }

    @app.get("/readyz")
    async def readyz() -> Response:
        reason = await check_ready(config, manager.store)
        if reason is not None:
            return _error(503, reason, ready=False, reason=mask_urls(reason))
        return MaskedJSONResponse({"status": "ready"})

    @app.get("/metrics", dependencies=[_auth(config)])
    async def prometheus() -> Response:
        counts = await manager.counts()
        for status in ("pending", "running", "success", "failed", "cancelled", "interrupted"):
            RUNS.labels(status=status).set(counts.get(status, 0))
        return Response(generate_latest(metrics.REGISTRY), media_type=CONTENT_TYPE_LATEST)


def _run_routes(app: FastAPI, manager: RunManager, config: ServeConfig) -> None:
    auth = [_auth(config)]

    @app.post("/v1/runs", status_code=202, dependencies=auth)
    async def create_run(
        request: Request, idempotency_key: str | None = Header(default=None)
    ) -> Response:
        record, new = await manager.submit("run", await _json_body(request), idempotency_key)
        return MaskedJSONResponse(manager.view(record), status_code=202 if new else 200)

    @app.get("/v1/runs", dependencies=auth)
    async def list_runs(kind: str | None = None) -> dict[str, Any]:
        return {"runs": [manager.view(r) for r in await manager.runs(kind)]}

    # The status polls answer a Response: FastAPI would otherwise pass the dict through its
    # serializer before rendering it (a sixth of a poll's CPU).
    @app.get("/v1/runs/{run_id}", dependencies=auth)
    async def get_run(run_id: str) -> Response:
        return MaskedJSONResponse(manager.view(await manager.get(run_id)))

    @app.delete("/v1/runs/{run_id}", status_code=202, dependencies=auth)
    async def cancel_run(run_id: str) -> dict[str, Any]:
        return manager.view(await manager.cancel(run_id))

    @app.post("/v1/runs/{run_id}/resume", status_code=202, dependencies=auth)
    async def resume_run(run_id: str, request: Request) -> dict[str, Any]:
        return manager.view(await manager.resume(run_id, await _json_body(request)))

    @app.get("/v1/runs/{run_id}/history", dependencies=auth)
    async def run_history(run_id: str) -> dict[str, Any]:
        await manager.get(run_id)
        return {"run_id": run_id, "samples": manager.history(run_id)}

    @app.post("/v1/replay/ticks", status_code=202, dependencies=auth)
    async def start_replay(
        request: Request, idempotency_key: str | None = Header(default=None)
    ) -> Response:
        record, new = await manager.submit("replay", await _json_body(request), idempotency_key)
        return MaskedJSONResponse(_replay_view(manager, record), status_code=202 if new else 200)

    @app.get("/v1/replay/ticks", dependencies=auth)
    async def list_replays() -> dict[str, Any]:
        runs = await manager.runs("replay")
        return {"replays": [_replay_view(manager, r) for r in runs]}

    @app.get("/v1/replay/ticks/{run_id}", dependencies=auth)
    async def get_replay(run_id: str) -> Response:
        return MaskedJSONResponse(_replay_view(manager, await manager.get(run_id)))

    from .bars_api import bars_routes

    bars_routes(app, config, auth)


def _run_view(manager: RunManager, record: Any) -> dict[str, Any]:
    return manager.view(record)


def _replay_view(manager: RunManager, record: Any) -> dict[str, Any]:
    """The orchestrator's shape: run_id and status first; the full run beside them."""
    view = manager.view(record)
    return {"run_id": record.id, "status": record.status, "error": record.error, **view}


def _page_routes(app: FastAPI, config: ServeConfig) -> None:
    static = resources.files("market_data_pipeline.serve") / "static"

    @app.get("/", response_class=HTMLResponse)
    async def page() -> HTMLResponse:
        return HTMLResponse((static / "index.html").read_text(encoding="utf-8"))

    app.mount("/static", StaticFiles(directory=str(static)), name="static")
