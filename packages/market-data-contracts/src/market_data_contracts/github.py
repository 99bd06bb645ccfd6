"""GitHub's REST API for the contract tooling: one token policy, one client, commit statuses.

``GitHubClient`` is the one transport: ``dispatch.DispatchClient`` sends through it too.

The token policy is the one ``dispatch`` applies (``dispatch.check_token``): surrounding whitespace
stripped, nothing but visible ASCII inside, sent only in the ``Authorization`` header, only to the
API host (``https``, or ``http`` to a loopback address for tests), never to a redirect target
(a 3xx is a failure), and masked in every message. Retries follow ``dispatch.retry_delay``
(5xx, network errors, rate limits with ``Retry-After`` or ``x-ratelimit-reset``).

Commit statuses (``POST /repos/{owner}/{repo}/statuses/{sha}``, answered with 201): a downstream
reports its verdict on Core's release commit under the context ``contracts/OWNER/REPO``.
"""

from __future__ import annotations

import http.client
import json
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.message import Message
from typing import Any
from urllib.parse import urlsplit

from .defaults import DEFAULT_GITHUB_API_URL
from .errors import ContractsError
from .record import VerificationRecord
from .verdict import Verdict

MAX_WAIT_S = 60.0
SECONDARY_LIMIT_WAIT_S = 60.0  # GitHub: "wait at least one minute before retrying"
MAX_SECONDARY_LIMIT_WAIT_S = 300.0
MAX_QUOTE_CHARS = 300
_SECONDARY_LIMIT = "secondary rate limit"
_TOKEN = re.compile(r"^[\x21-\x7e]+$")  # visible ASCII: what a header value can carry
REPO_NAME = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
_MOVED = "GitHub answered with a redirect (repository moved or renamed?); not followed"
MAX_DESCRIPTION_CHARS = 140  # GitHub truncates nothing: a longer description is a 422
_SHA = re.compile(r"^[0-9a-fA-F]{7,40}$")
_LOOPBACK = ("127.0.0.1", "localhost", "::1")
STATE_OF = {
    Verdict.COMPATIBLE: "success",
    Verdict.COMPATIBLE_WITH_NOTICES: "success",
    Verdict.INCOMPATIBLE: "failure",
    Verdict.INCOMPLETE: "error",
    Verdict.ERROR: "error",
}
_STATUS_CAUSES = {
    401: "the token is invalid or expired (rotate REPO_TOKEN)",
    403: "the token may not write commit statuses on this repository (fine-grained PAT: "
    "Commit statuses read and write; classic PAT: repo:status)",
    404: "the repository or commit does not exist, or the token cannot see it",
    422: "GitHub rejected the status (unknown commit, a bad field, or the 1000-status limit "
    "of this commit and context)",
}


class GitHubError(ContractsError):
    """A GitHub request failed for good; the message names the target and the likely cause."""

    def __init__(self, target: str, status: int | None, message: str, attempts: int) -> None:
        self.target = target
        self.status = status
        self.attempts = attempts
        super().__init__(f"{target}: {message}")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Refuse every redirect: following one would resend the token to another address."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def check_token(token: str) -> str:
    """Return the token without surrounding whitespace; raise ``ContractsError`` if unusable."""
    token = token.strip()
    if not token:
        raise ContractsError("no token: set REPO_TOKEN (or GITHUB_TOKEN)")
    if not _TOKEN.match(token):
        raise ContractsError(
            "the token contains spaces or control characters inside it; check REPO_TOKEN"
        )
    return token


def retry_delay(
    status: int | None,
    headers: Message | None,
    attempt: int,
    backoff_s: float,
    now: float | None = None,
    *,
    body: str = "",
    secondary_limit_wait_s: float = SECONDARY_LIMIT_WAIT_S,
) -> float | None:
    """Return seconds to wait before retrying, or None when the failure is final."""
    retry_after = _header_float(headers, "Retry-After")
    remaining = _header_float(headers, "x-ratelimit-remaining")
    reset = _header_float(headers, "x-ratelimit-reset")
    secondary = status in (403, 429) and _SECONDARY_LIMIT in body.lower()
    rate_limited = (
        status == 429
        or secondary
        or (status == 403 and (retry_after is not None or remaining == 0))
    )
    if not rate_limited and not (status is None or status >= 500):
        return None
    if retry_after is not None:  # never 0: an immediate retry only repeats the refusal
        return min(max(retry_after, backoff_s), MAX_WAIT_S)
    if remaining == 0 and reset is not None:
        return min(max(reset - (now if now is not None else time.time()), 0.0) + 1.0, MAX_WAIT_S)
    if secondary:
        return min(secondary_limit_wait_s * 2.0 ** (attempt - 1), MAX_SECONDARY_LIMIT_WAIT_S)
    return min(backoff_s * 2.0 ** (attempt - 1), MAX_WAIT_S)


def failure_message(
    status: int | None,
    body: str,
    attempts: int,
    *,
    expect: int = 204,
    causes: Mapping[int, str] | None = None,
) -> str:
    """Return a readable cause for a final failure (GitHub's own message appended).

    ``expect`` is the status that means success; ``causes`` explain the final statuses of the
    call (none by default).
    """
    if status is None:
        return f"{_quoted(body)} after {attempts} attempt(s)"
    github = _github_message(body)
    cause = (causes or {}).get(status, f"GitHub answered HTTP {status}")
    if 300 <= status < 400:
        cause = _MOVED
    elif status < 300:
        cause = f"GitHub answered HTTP {status}, not {expect}: it may not have acted on the request"
    elif _SECONDARY_LIMIT in body.lower() or (status in (403, 429) and attempts > 1):
        cause = "rate limited by GitHub and still limited after retries"
    suffix = f" (GitHub: {_quoted(github)})" if github else ""
    return f"HTTP {status}: {cause}{suffix}; {attempts} attempt(s)"


def _quoted(text: str) -> str:
    """Return ``text`` cut to ``MAX_QUOTE_CHARS`` (a server may answer with megabytes)."""
    if len(text) <= MAX_QUOTE_CHARS:
        return text
    return f"{text[:MAX_QUOTE_CHARS]}... ({len(text):,} characters)"


def _github_message(body: str) -> str:
    try:
        data = json.loads(body)
    except ValueError:
        return ""
    return str(data.get("message", "")) if isinstance(data, dict) else ""


def _header_float(headers: Message | None, name: str) -> float | None:
    value: str | None = headers.get(name) if headers is not None else None
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def check_api_url(api_url: str) -> str:
    """Return the API base URL without a trailing slash; refuse one the token must not reach."""
    parts = urlsplit(api_url)
    if parts.scheme == "https" and parts.hostname:
        return api_url.rstrip("/")
    if parts.scheme == "http" and parts.hostname in _LOOPBACK:
        return api_url.rstrip("/")
    raise ContractsError(
        f"refusing to send the token to {parts.scheme}://{parts.hostname or ''}: the API URL "
        "must be https (or http to 127.0.0.1 for a local test server)"
    )


MAX_ANSWER_BYTES = 64 * 1024  # GitHub's answers to these calls are a few hundred bytes


class GitHubClient:
    """Send JSON to GitHub's REST API with retries; the token stays inside this object."""

    def __init__(
        self,
        token: str,
        *,
        api_url: str = DEFAULT_GITHUB_API_URL,
        attempts: int = 5,
        backoff_s: float = 1.0,
        timeout_s: float = 30.0,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        self._token = check_token(token)
        self.api_url = check_api_url(api_url)
        self.attempts = max(1, attempts)
        self.backoff_s = backoff_s
        self.timeout_s = timeout_s
        self._sleep = sleep or time.sleep
        self._opener = urllib.request.build_opener(_NoRedirect)

    def __repr__(self) -> str:
        return f"GitHubClient(api_url={self.api_url!r}, token=<hidden>)"

    def scrub(self, text: str) -> str:
        """Return ``text`` with the token masked."""
        return text.replace(self._token, "***")

    def post(
        self, path: str, body: Mapping[str, Any], *, expect: int, target: str, causes: Any = None
    ) -> int:
        """POST ``body`` to ``path``; return the attempts used, or raise ``GitHubError``."""
        data = json.dumps(dict(body)).encode()
        for attempt in range(1, self.attempts + 1):
            status, headers, text = self.send(path, data)
            if status == expect:
                return attempt
            wait = retry_delay(status, headers, attempt, self.backoff_s, body=text)
            if wait is None or attempt == self.attempts:
                message = failure_message(status, text, attempt, expect=expect, causes=causes or {})
                raise GitHubError(target, status, self.scrub(message), attempt)
            self._sleep(wait)
        raise AssertionError("unreachable")  # pragma: no cover

    def send(
        self, path: str, data: bytes, *, timeout_s: float | None = None
    ) -> tuple[int | None, Message | None, str]:
        """POST ``data`` once; return (status, headers, body), status None on a network error.

        The body is read up to ``MAX_ANSWER_BYTES``: a server may answer with megabytes.
        """
        request = urllib.request.Request(
            f"{self.api_url}{path}",
            data=data,
            method="POST",
            headers={
                "Accept": "application/vnd.github+json",
                "Authorization": f"Bearer {self._token}",
                "X-GitHub-Api-Version": "2022-11-28",
                "Content-Type": "application/json",
                "User-Agent": "market-data-pipeline-contracts",
            },
        )
        try:
            timeout = self.timeout_s if timeout_s is None else timeout_s
            with self._opener.open(request, timeout=timeout) as response:
                return (
                    int(response.status),
                    response.headers,
                    response.read(MAX_ANSWER_BYTES).decode("utf-8", "replace"),
                )
        except urllib.error.HTTPError as exc:
            try:
                text = exc.read(MAX_ANSWER_BYTES).decode("utf-8", "replace")
            except (http.client.HTTPException, OSError):
                text = ""
            return exc.code, exc.headers, text
        except urllib.error.URLError as exc:
            return None, None, self.scrub(f"connection failed: {exc.reason}")
        except (http.client.HTTPException, ValueError, OSError) as exc:
            return None, None, self.scrub(f"connection failed: {type(exc).__name__}: {exc}")


@dataclass(frozen=True)
class CommitStatus:
    """The status a downstream posts on Core's commit."""

    state: str
    context: str
    description: str
    target_url: str | None

    def to_body(self) -> dict[str, str]:
        """Return the JSON body GitHub expects."""
        body = {"state": self.state, "context": self.context, "description": self.description}
        if self.target_url:
            body["target_url"] = self.target_url
        return body


def status_for(record: VerificationRecord) -> CommitStatus:
    """Return the commit status reporting ``record`` (context ``contracts/OWNER/REPO``)."""
    counts = record.result.counts
    parts = [record.verdict.label, f"{counts.passed} passed"]
    if counts.failed or counts.errors:
        parts.append(f"{counts.failed + counts.errors} failed")
    if counts.skipped:
        parts.append(f"{counts.skipped} skipped")
    if counts.xfailed:
        parts.append(f"{counts.xfailed} xfailed")
    text = f"{parts[0]}: {', '.join(parts[1:])}; py{record.python}"
    if record.correlation_id:
        text += f"; id {record.correlation_id}"
    if len(text) > MAX_DESCRIPTION_CHARS:
        text = text[: MAX_DESCRIPTION_CHARS - 3] + "..."
    return CommitStatus(
        state=STATE_OF[record.verdict],
        context=f"contracts/{record.repo}",
        description=text,
        target_url=record.run_url,
    )


def missing_status(repo: str, run_url: str | None, correlation_id: str = "") -> CommitStatus:
    """Return the ``error`` status for a run that produced no record (its set-up failed)."""
    text = "error: the run produced no verdict (set-up failed; see the run)"
    if correlation_id:
        text += f"; id {correlation_id}"
    return CommitStatus("error", f"contracts/{repo}", text[:MAX_DESCRIPTION_CHARS], run_url)


def post_status(client: GitHubClient, core_repo: str, sha: str, status: CommitStatus) -> int:
    """Post ``status`` on ``core_repo``'s commit ``sha``; return the attempts used."""
    if not REPO_NAME.match(core_repo):
        raise ContractsError(f"{core_repo!r} is not an OWNER/NAME repository")
    if not _SHA.match(sha):
        raise ContractsError(f"{sha!r} is not a commit SHA (7 to 40 hexadecimal digits)")
    path = f"/repos/{core_repo}/statuses/{sha}"
    return client.post(
        path,
        status.to_body(),
        expect=201,
        target=f"{core_repo}@{sha[:12]}",
        causes=_STATUS_CAUSES,
    )
