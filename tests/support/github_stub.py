"""A GitHub API stand-in on 127.0.0.1 that replays scripted responses and records requests.

``serve_github()`` is a context manager yielding the base URL and the script; the tests of the
contract tooling and of the workflows point ``--api-url`` or ``GITHUB_API_URL`` at it (GitHub
itself is never contacted).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# (status, headers, JSON body), or raw bytes sent as the whole answer (a broken server).
Response = tuple[int, dict[str, str], dict[str, Any] | None] | bytes


@dataclass
class Scripted:
    """Responses to give, in order (the last one repeats), and the requests seen."""

    responses: list[Response] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)

    def next_response(self) -> Response:
        if len(self.responses) > 1:
            return self.responses.pop(0)
        return self.responses[0] if self.responses else (204, {}, None)


@contextmanager
def serve_github() -> Iterator[tuple[str, Scripted]]:
    """Start a local HTTP server; yield its base URL and the script."""
    script = Scripted()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            script.requests.append({"path": self.path, "headers": dict(self.headers), "body": None})
            self.send_response(204)
            self.end_headers()

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            body = json.loads(self.rfile.read(length) or b"null")
            script.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
            response = script.next_response()
            if isinstance(response, bytes):
                self.wfile.write(response)
                self.close_connection = True
                return
            status, headers, payload = response
            data = json.dumps(payload).encode() if payload is not None else b""
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", script
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
