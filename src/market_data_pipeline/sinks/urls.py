"""Sink URLs: which backend a URL names, where it points, and how to print it without secrets.

Supported forms:
    sqlite:///relative/path.db     a file relative to the working directory
    sqlite:////absolute/path.db    an absolute path (four slashes)
    sqlite:///:memory:             a private in-memory database (tests)
    postgresql://user:pw@host:5432/db?options=...   (``postgres://`` too; needs the postgres extra)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

from ..errors import UsageError

DEFAULT_SINK_URL = "sqlite:///mdp.db"
SUPPORTED_SCHEMES = ("sqlite", "postgresql", "postgres")

Backend = Literal["sqlite", "postgresql"]

_QUERY_SECRET = re.compile(r"(?i)(password=)[^&;\s]*")


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
            + f" (default {DEFAULT_SINK_URL})"
        )
    if scheme == "sqlite":
        return SinkTarget("sqlite", _sqlite_path(url, rest))
    return SinkTarget("postgresql", url)


def _sqlite_path(url: str, rest: str) -> str:
    # "sqlite:///x.db" -> rest "/x.db" -> "x.db"; "sqlite:////abs/x.db" -> "/abs/x.db".
    if not rest.startswith("/"):
        raise UsageError(
            f"bad SQLite URL {url!r}: expected sqlite:///relative.db or sqlite:////absolute.db"
        )
    path = rest[1:].split("?", 1)[0]
    if not path:
        raise UsageError(f"bad SQLite URL {url!r}: no file path (e.g. {DEFAULT_SINK_URL})")
    return path


def redact_url(url: str) -> str:
    """Return ``url`` with its password (userinfo or ``password=`` query) shown as ``***``."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return _QUERY_SECRET.sub(r"\1***", url.split("@")[-1])
    query = _QUERY_SECRET.sub(r"\1***", parts.query)
    if password is None and query == parts.query:
        return url  # urlunsplit would also drop the empty netloc of sqlite:///x.db
    netloc = parts.netloc
    if password is not None:
        userinfo, _, hostinfo = netloc.rpartition("@")
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:***@{hostinfo}"
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def scrub(message: str, url: str) -> str:
    """Remove the password of ``url`` from a driver message and keep its first line only."""
    first = next((line.strip() for line in message.splitlines() if line.strip()), "unknown error")
    try:
        password = urlsplit(url).password
    except ValueError:
        password = None
    if password:
        first = first.replace(password, "***")
    return _QUERY_SECRET.sub(r"\1***", first)
