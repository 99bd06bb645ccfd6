"""Sink URLs: which backend a URL names, where it points, and how to print it without secrets.

Supported forms:
    sqlite:///relative/path.db     a file relative to the working directory
    sqlite:////absolute/path.db    an absolute path (four slashes)
    sqlite:///:memory:             a private in-memory database (tests)
    postgresql://user:pw@host:5432/db?options=...   (``postgres://`` too; needs the postgres extra)
    memory://NAME                  bars kept in this Python process (``read_bars`` reads them)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal
from urllib.parse import unquote

from ..defaults import DEFAULT_SINK
from ..errors import UsageError

SUPPORTED_SCHEMES = ("sqlite", "postgresql", "postgres", "memory")

Backend = Literal["sqlite", "postgresql", "memory"]

_QUERY_SECRET = re.compile(r"(?i)(password=)[^&;\s]*")
_MIN_DECODED_SECRET = 4  # a shorter decoded password would mask ordinary words


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


def redact_url(url: str) -> str:
    """Return ``url`` with its password (userinfo or ``password=`` query) shown as ``***``.

    Works on malformed URLs too: a password may hold unencoded ``/``, ``#``, ``?`` or ``@``, and
    the host may be broken, so the userinfo is found by position rather than by a URL parser.
    A URL of another shape (``postgresql:/u:pw@h``, ``redis//:pw@h``) is masked by ``mask_urls``.
    """
    span = _password_span(url)
    if span is not None:
        url = f"{url[: span[0]]}***{url[span[1] :]}"
    return mask_urls(_QUERY_SECRET.sub(r"\1***", url))


def mask_urls(text: str) -> str:
    """Return ``text`` with the password of every URL-like word in it shown as ``***``.

    A word (a run without whitespace) with an ``@`` is URL-like whatever its scheme looks like:
    ``scheme://``, ``scheme:/``, ``scheme//`` or none at all. Its password runs from the first
    ``:`` after the scheme to the word's last ``@``; a word without that ``:`` holds a user name
    only, as libpq and Redis read it. ``password=...`` is masked anywhere.
    """
    if "@" in text:
        text = _WORD.sub(_mask_word, text)
    return _QUERY_SECRET.sub(r"\1***", text)


_WORD = re.compile(r"\S*@\S*")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*(?::/+|//)")


def _mask_word(match: re.Match[str]) -> str:
    word = match.group(0)
    at = word.rfind("@")
    scheme = _SCHEME.search(word, 0, at)
    colon = word.find(":", scheme.end() if scheme else 0, at)
    if colon < 0 or colon + 1 == at:
        return word
    return f"{word[: colon + 1]}***{word[at:]}"


def _password_span(url: str) -> tuple[int, int] | None:
    """Return where the userinfo password of ``url`` starts and ends, if it has one.

    The password runs from the first ``:`` after ``scheme://`` to the last ``@`` of the URL: a
    password may contain ``@`` unencoded, and masking a little too much is the safe mistake.
    """
    scheme_end = url.find("://")
    at = url.rfind("@")
    if scheme_end < 0 or at < scheme_end:
        return None
    colon = url.find(":", scheme_end + 3, at)
    if colon < 0:
        return None
    return colon + 1, at


def scrub(message: str, url: str) -> str:
    """Remove the password of ``url`` from a driver message and keep its first line only."""
    first = next((line.strip() for line in message.splitlines() if line.strip()), "unknown error")
    span = _password_span(url)
    if span is not None and span[1] > span[0]:
        raw = url[span[0] : span[1]]
        first = _remove(first, raw)
        decoded = unquote(raw)
        if decoded != raw and len(decoded) >= _MIN_DECODED_SECRET:
            first = _remove(first, decoded)
    return _QUERY_SECRET.sub(r"\1***", first)


def _remove(text: str, secret: str) -> str:
    # Repeat: a replacement can join two halves into a new occurrence. Each pass shortens the
    # text whenever the secret is longer than the mask, so this ends.
    while secret in text and len(secret) > len("***"):
        text = text.replace(secret, "***")
    return text.replace(secret, "***") if secret in text else text
