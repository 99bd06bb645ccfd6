"""Status polls of runs this service holds in memory, answered before FastAPI's routing.

A replay client polls ``GET /v1/replay/ticks/{id}`` (or ``/v1/runs/{id}``) every few tens of
milliseconds per run: with fifty runs that is most of the service's CPU, and on a shared
machine the service's share of the cores is what a poll waits for. Routing, dependency
solving and response serialization were most of a poll's cost (profiled with py-spy); this
middleware answers the same bytes for a run in memory with a bearer token check and nothing
else. Anything else (another path, a run only in the store, a wrong token) goes on to the
app, which answers it as before (404, 401, a run read from the store).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from .guards import ServeConfig, token_ok
from .manager import RunManager

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

Render = Callable[[dict[str, Any]], bytes]
View = Callable[[RunManager, Any], dict[str, Any]]


class StatusPolls:
    """ASGI middleware: ``GET {prefix}{id}`` of a run in memory, answered directly."""

    def __init__(
        self,
        app: App,
        manager: RunManager,
        config: ServeConfig,
        views: dict[str, View],
        render: Render,
    ) -> None:
        self.app = app
        self.manager = manager
        self.config = config
        self.views = views  # path prefix -> the view the route answers
        self.render = render

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = self._answer(scope) if scope["type"] == "http" else None
        if body is None:
            await self.app(scope, receive, send)
            return
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    def _answer(self, scope: Scope) -> bytes | None:
        if scope["method"] != "GET":
            return None
        path: str = scope["path"]
        for prefix, view in self.views.items():
            run_id = path.removeprefix(prefix)
            if run_id == path or not run_id or "/" in run_id:
                continue
            run = self.manager.live.get(run_id) or self.manager.ended.get(run_id)
            if run is None:
                return None
            authorization = dict(scope["headers"]).get(b"authorization")
            given = None if authorization is None else authorization.decode("latin-1")
            if not token_ok(self.config.token, given):
                return None
            return self.render(view(self.manager, run.record))
        return None
