"""Credentials in URLs and messages, masked wherever a URL is shown: ``redact_url`` for a URL
(a sink, a bus, a NATS server, a ledger), ``mask_urls`` for free text holding URLs, ``scrub``
for a driver's error message about a URL. The one implementation: market-data-pipeline imports
it from here (stdlib only, so the toolkit stays small and the pipeline depends on it anyway).
"""

from __future__ import annotations

import re
from urllib.parse import unquote

# A query or option whose name speaks of a secret (password=, token=, access_token=, api_key=,
# X-Amz-Signature=, client_secret=, ...): its value is masked wherever it appears.
_SECRET_WORDS = r"(?:pass|pwd|token|secret|key|auth|sig|credential|session)"
_QUERY_SECRET = re.compile(
    rf"(?i)(?<![\w.-])([\w.-]*{_SECRET_WORDS}[\w.-]*=)"
    r"[^&;\s]*"
)
_SECRET_NAME = re.compile(rf"(?i){_SECRET_WORDS}")
_NAME_CHAR = re.compile(r"[\w.-]")
# Where a second URL of a list begins (``nats://a:4222,nats://b:4222``).
_NEXT_URL = re.compile(r",(?=[A-Za-z][A-Za-z0-9+.-]*://)")
_MIN_DECODED_SECRET = 4  # a shorter decoded password would mask ordinary words


def redact_url(url: str) -> str:
    """Return ``url`` with its credentials shown as ``***``: the password of a userinfo
    (``user:***@``), a userinfo that is a token or a user name alone (``***@``, as NATS,
    HTTP and Redis read a secret there), and every query value whose name speaks of a secret
    (``password=``, ``token=``, ``access_token=``, ``api_key=`` ...). A list of URLs
    (``nats://a,nats://b``) is masked URL by URL.

    Works on malformed URLs too: a password may hold unencoded ``/``, ``#``, ``?`` or ``@``, and
    the host may be broken, so the userinfo is found by position rather than by a URL parser.
    A URL of another shape (``postgresql:/u:pw@h``, ``redis//:pw@h``) is masked by ``mask_urls``.
    """
    return ",".join(_redact_one(part) for part in _NEXT_URL.split(url))


def _redact_one(url: str) -> str:
    span = _secret_span(url)
    if span is not None:
        url = f"{url[: span[0]]}***{url[span[1] :]}"
    return mask_urls(_QUERY_SECRET.sub(r"\1***", url))


def mask_urls(text: str) -> str:
    """Return ``text`` with the credentials of every URL-like word in it shown as ``***``.

    A word (a run without whitespace) with an ``@`` is URL-like whatever its scheme looks like:
    ``scheme://``, ``scheme:/``, ``scheme//`` or none at all. Its password runs from the first
    ``:`` after the scheme to the word's last ``@``; without that ``:`` the whole userinfo is
    masked when the word has a scheme or names a port (``tok@host:4222``): it may be a token.
    An address without either (``user@example.com``) is left alone. Query values named for
    secrets (``password=``, ``token=`` ...) are masked anywhere.
    """
    if "@" in text:
        text = _WORD.sub(_mask_word, text)
    if not _secret_name_before_equals(text):
        return text  # the usual case, found without the query pattern's slow scan
    return _QUERY_SECRET.sub(r"\1***", text)


def _secret_name_before_equals(text: str) -> bool:
    """True when a ``=`` follows a name (a run of ``[\\w.-]``) with a secret's word in it: the
    only texts ``_QUERY_SECRET`` changes. Scanning back from each ``=`` is linear; the pattern
    itself retries its alternation at every name character (most of a status answer's time)."""
    at = text.find("=")
    while at != -1:
        start = at
        while start > 0 and _NAME_CHAR.match(text, start - 1):
            start -= 1
        if _SECRET_NAME.search(text, start, at):
            return True
        at = text.find("=", at + 1)
    return False


# A whole word with an "@" in it, tried only where a word starts (linear, unlike \S*@\S*).
_WORD = re.compile(r"(?<!\S)[^\s@]*+@\S*")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*(?::/+|//)")
_PORT_AFTER = re.compile(r"@[\w.-]+:\d+")
# libpq reads a userinfo without ``:`` as a role name, never as a secret: it stays readable.
_NAME_ONLY_SCHEMES = ("postgresql", "postgres")


def _name_only(scheme: str) -> bool:
    return scheme.split(":", 1)[0].rstrip("/").lower() in _NAME_ONLY_SCHEMES


def _mask_word(match: re.Match[str]) -> str:
    return ",".join(_mask_one(part) for part in _NEXT_URL.split(match.group(0)))


def _mask_one(word: str) -> str:
    at = word.rfind("@")
    if at < 0:
        return word
    scheme = _SCHEME.search(word, 0, at)
    start = scheme.end() if scheme else 0
    colon = word.find(":", start, at)
    if colon >= 0:
        return word if colon + 1 == at else f"{word[: colon + 1]}***{word[at:]}"
    if at == start or not (scheme or _PORT_AFTER.match(word, at)):
        return word
    if scheme and _name_only(scheme.group(0)):
        return word
    return f"{word[:start]}***{word[at:]}"


def _secret_span(url: str) -> tuple[int, int] | None:
    """Return where the credential of ``url``'s userinfo starts and ends: its password, or
    the whole userinfo when it has no ``:`` (a token, or a user name: masked alike), except
    for PostgreSQL, whose userinfo without ``:`` is a role name."""
    span = _password_span(url)
    if span is not None:
        return span
    scheme_end = url.find("://")
    at = url.rfind("@")
    if scheme_end < 0:  # a server without scheme: ``tok@host:4222``
        bare = at > 0 and ":" not in url[:at] and _PORT_AFTER.match(url, at)
        return (0, at) if bare else None
    if at <= scheme_end + 3 or _name_only(url[:scheme_end]):
        return None
    return scheme_end + 3, at


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
    for raw in _secrets(url):
        first = _remove(first, raw)
        decoded = unquote(raw)
        if decoded != raw and len(decoded) >= _MIN_DECODED_SECRET:
            first = _remove(first, decoded)
    return mask_urls(first)


def _secrets(url: str) -> list[str]:
    """The credentials ``redact_url`` masks in ``url``, as written there."""
    found = []
    for part in _NEXT_URL.split(url):
        span = _secret_span(part)
        if span is not None and span[1] > span[0]:
            found.append(part[span[0] : span[1]])
        found += [m.group(0)[len(m.group(1)) :] for m in _QUERY_SECRET.finditer(part)]
    return [secret for secret in found if secret]


def _remove(text: str, secret: str) -> str:
    # Repeat: a replacement can join two halves into a new occurrence. Each pass shortens the
    # text whenever the secret is longer than the mask, so this ends.
    while secret in text and len(secret) > len("***"):
        text = text.replace(secret, "***")
    return text.replace(secret, "***") if secret in text else text
