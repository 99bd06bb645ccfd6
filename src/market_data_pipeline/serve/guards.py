"""What a request may ask of the service: the bearer token, input paths, sinks, body size.

- **Token**: with ``--token``/``MDP_SERVE_TOKEN`` set, every API call needs
  ``Authorization: Bearer TOKEN`` (compared in constant time); the probes stay open.
- **Paths**: inputs are resolved under ``--data-dir``; an absolute path elsewhere, a ``..``
  part, or a file that resolves (through a symlink) outside it is refused with 403.
- **Sinks and bus**: only the stores the service was started with (``--sink``, repeatable; the
  first is the default) and its own ``--bus``; a request cannot point a run at another database.
- **Body size**: bodies over ``--max-body`` bytes are refused with 413 before they are read whole.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import PipelineError, UsageError
from ..sources.replay.paths import expand_inputs
from ..urls import redact_url

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

DEFAULT_MAX_BODY = 64 * 1024
# How long a replica's runs stay its own without a renewal; it renews three times a lease.
DEFAULT_LEASE_S = 30.0
# Settings a request may not set: the service owns its ports and its configuration.
SERVICE_OWNED = {"metrics_port": "the service serves /metrics itself"}


class ForbiddenError(PipelineError):
    """A request asks for something outside what the service allows (HTTP 403)."""


@dataclass(frozen=True)
class ServeConfig:
    """How ``mdp serve`` was started."""

    data_dir: Path
    sinks: tuple[str, ...]
    host: str = "127.0.0.1"
    port: int = 8083
    token: str | None = None
    bus: str | None = None
    max_runs: int = 4
    max_body: int = DEFAULT_MAX_BODY
    lease_s: float = DEFAULT_LEASE_S

    @property
    def default_sink(self) -> str:
        return self.sinks[0]


def is_loopback(host: str) -> bool:
    """True for an address only this machine can reach (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_bind(host: str, token: str | None) -> None:
    """Refuse to listen beyond loopback without a token."""
    if not is_loopback(host) and not token:
        raise UsageError(
            f"refusing to listen on {host} without a token: anyone who can reach it could start"
            " runs; set --token or MDP_SERVE_TOKEN (or listen on 127.0.0.1)"
        )


def token_ok(expected: str | None, authorization: str | None) -> bool:
    """True when no token is required, or ``authorization`` is ``Bearer <expected>``."""
    if not expected:
        return True
    scheme, _, given = (authorization or "").partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode(), expected.encode())


def guard_settings(flags: dict[str, Any], config: ServeConfig) -> dict[str, Any]:
    """Return the flags with inputs resolved under the data directory and the sink and bus set.

    Raise ``ForbiddenError`` for what the service does not allow; ``BadInputError`` for an
    input under the data directory that names no file (as ``mdp run`` does).
    """
    out = dict(flags)
    for name, why in SERVICE_OWNED.items():
        if out.get(name) is not None:
            raise ForbiddenError(f"{name.replace('_', '-')}: not allowed here: {why}")
    out["sink"] = _allowed_sink(out.get("sink"), config)
    bus = out.get("bus")
    if bus is not None and bus != (config.bus or "memory://"):
        raise ForbiddenError(
            f"bus {redact_url(str(bus))!r} is not the service's bus: omit it (runs obey"
            f" {redact_url(config.bus or 'memory://')})"
        )
    if config.bus:
        out["bus"] = config.bus
    if out.get("input") is not None:
        out["input"] = resolve_inputs(out["input"], config.data_dir)
    return out


def _allowed_sink(sink: Any, config: ServeConfig) -> str:
    if sink is None:
        return config.default_sink
    if sink not in config.sinks:
        allowed = ", ".join(redact_url(s) for s in config.sinks)
        raise ForbiddenError(
            f"sink {redact_url(str(sink))!r} is not one this service writes to (allowed: {allowed})"
        )
    return str(sink)


def resolve_inputs(value: Any, data_dir: Path) -> tuple[str, ...]:
    """Return the files ``value`` names, every one inside ``data_dir`` (symlinks resolved)."""
    patterns = [value] if isinstance(value, str) else list(value)
    root = data_dir.resolve()
    anchored = [_anchor(str(pattern), root) for pattern in patterns]
    files = expand_inputs(anchored)
    outside = [path for path in files if not path.is_relative_to(root)]
    if outside:
        raise ForbiddenError(f"input {outside[0].name!r} resolves outside the data directory")
    return tuple(str(path) for path in files)


def _anchor(pattern: str, root: Path) -> str:
    path = Path(pattern)
    if ".." in path.parts:
        raise ForbiddenError(f"input {pattern!r}: '..' is not allowed; name paths in the data dir")
    if path.is_absolute():
        if not path.is_relative_to(root) and not Path(pattern).resolve().is_relative_to(root):
            raise ForbiddenError(f"input {pattern!r} is outside the data directory")
        return pattern
    return str(root / path)


class BodyLimit:
    """ASGI middleware: refuse request bodies larger than ``limit`` bytes with 413."""

    def __init__(self, app: App, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await _too_large(send, self.limit)
            return
        seen = 0
        started = False

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise _TooLargeError
            return message

        async def tracking(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited, tracking)
        except _TooLargeError:
            if not started:
                await _too_large(send, self.limit)


class _TooLargeError(Exception):
    pass


async def _too_large(send: Send, limit: int) -> None:
    body = f'{{"error": "request body larger than {limit} bytes"}}'.encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": body})
