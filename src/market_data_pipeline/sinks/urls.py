"""Sink URLs: which backend a URL names and where it points (their secrets: ``..urls``).

Supported forms:
    sqlite:///relative/path.db     a file relative to the working directory
    sqlite:////absolute/path.db    an absolute path (four slashes)
    sqlite:///:memory:             a private in-memory database (tests)
    postgresql://user:pw@host:5432/db?options=...   (``postgres://`` too; needs the postgres extra)
    memory://NAME                  bars kept in this Python process (``read_bars`` reads them)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ..defaults import DEFAULT_SINK
from ..errors import UsageError
from ..urls import redact_url

SUPPORTED_SCHEMES = ("sqlite", "postgresql", "postgres", "memory")

Backend = Literal["sqlite", "postgresql", "memory"]


@dataclass(frozen=True, slots=True)
class SinkTarget:
    """A parsed sink URL: the backend and what to hand its driver (a path or a libpq URI)."""

    backend: Backend
    location: str


def parse_sink_url(url: str) -> SinkTarget:
    """Split a sink URL into backend and location; raise ``UsageError`` for unknown schemes."""
    scheme, sep, rest = url.partition("://")
    scheme = scheme.lower()
    if not sep or scheme not in SUPPORTED_SCHEMES:
        raise UsageError(
            f"unsupported sink URL {redact_url(url)!r}: expected one of "
            + ", ".join(f"{s}://" for s in SUPPORTED_SCHEMES)
            + f" (default {DEFAULT_SINK})"
        )
    if scheme == "sqlite":
        return SinkTarget("sqlite", _sqlite_path(url, rest))
    if scheme == "memory":
        return SinkTarget("memory", rest.strip("/") or "default")
    return SinkTarget("postgresql", url)


def _sqlite_path(url: str, rest: str) -> str:
    # "sqlite:///x.db" -> rest "/x.db" -> "x.db"; "sqlite:////abs/x.db" -> "/abs/x.db".
    if not rest.startswith("/"):
        raise UsageError(
            f"bad SQLite URL {url!r}: expected sqlite:///relative.db or sqlite:////absolute.db"
        )
    path = rest[1:].split("?", 1)[0]
    if not path:
        raise UsageError(f"bad SQLite URL {url!r}: no file path (e.g. {DEFAULT_SINK})")
    return path
