"""Send ``repository_dispatch`` events (type ``core-release``) to downstream repositories.

``POST {api}/repos/{owner}/{repo}/dispatches`` with ``{"event_type", "client_payload"}``; GitHub
answers 204. Limits checked before sending: ``event_type`` at most 100 characters,
``client_payload`` at most 10 top-level keys and the whole body under 64 KB. 5xx, 429 and secondary
rate limits (403 with ``Retry-After`` or ``x-ratelimit-remaining: 0``) are retried with backoff;
401/403/404/422 end with a message naming the repository and the likely cause. The token is only
ever placed in the ``Authorization`` header, never in a message.
"""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from email.message import Message
from typing import Any

from .errors import ContractsError, DispatchError

DEFAULT_API_URL = "https://api.github.com"
EVENT_TYPE = "core-release"
MAX_PAYLOAD_KEYS = 10
MAX_BODY_BYTES = 64 * 1024
MAX_EVENT_TYPE_CHARS = 100
DEFAULT_ATTEMPTS = 5
DEFAULT_BACKOFF_S = 1.0
MAX_WAIT_S = 60.0
_REPO_NAME = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
_CAUSES = {
    401: "the token is invalid or expired (rotate REPO_TOKEN)",
    403: "the token lacks permission on this repository (fine-grained PAT: Contents read and "
    "write; classic PAT: repo scope)",
    404: "the repository does not exist or the token cannot see it (check the spelling, and "
    "that the token's repository access includes it)",
    422: "GitHub rejected the payload (event_type or client_payload invalid)",
}


@dataclass(frozen=True)
class DispatchResult:
    """The outcome for one repository: ``ok``, HTTP status, attempts made and a message."""

    repo: str
    ok: bool
    status: int | None
    attempts: int
    message: str


def build_payload(core_ref: str, correlation_id: str | None = None, **extra: str) -> dict[str, Any]:
    """Return the ``client_payload`` for a Core release: ref, correlation id and extra keys."""
    payload: dict[str, Any] = {
        "core_ref": core_ref,
        "correlation_id": correlation_id or str(uuid.uuid4()),
    }
    payload.update(extra)
    return payload


def check_request(repo: str, event_type: str, payload: Mapping[str, Any]) -> bytes:
    """Validate against GitHub's limits and return the JSON body; raise ``ContractsError``."""
    if not _REPO_NAME.match(repo):
        raise ContractsError(f"{repo!r} is not an OWNER/NAME repository")
    if not event_type or len(event_type) > MAX_EVENT_TYPE_CHARS:
        raise ContractsError(f"event_type must be 1-{MAX_EVENT_TYPE_CHARS} characters")
    if len(payload) > MAX_PAYLOAD_KEYS:
        raise ContractsError(
            f"client_payload has {len(payload)} top-level keys; GitHub allows {MAX_PAYLOAD_KEYS}"
        )
    body = json.dumps({"event_type": event_type, "client_payload": dict(payload)}).encode()
    if len(body) >= MAX_BODY_BYTES:
        raise ContractsError(f"dispatch body is {len(body)} bytes; GitHub allows under 64 KB")
    return body


class DispatchClient:
    """Post ``repository_dispatch`` events with retries; the token stays inside this object."""

    def __init__(
        self,
        token: str,
        *,
        api_url: str = DEFAULT_API_URL,
        attempts: int = DEFAULT_ATTEMPTS,
        backoff_s: float = DEFAULT_BACKOFF_S,
        timeout_s: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not token:
            raise ContractsError("no token: set REPO_TOKEN (or GITHUB_TOKEN)")
        self._token = token
        self.api_url = api_url.rstrip("/")
        self.attempts = max(1, attempts)
        self.backoff_s = backoff_s
        self.timeout_s = timeout_s
        self._sleep = sleep

    def __repr__(self) -> str:
        return f"DispatchClient(api_url={self.api_url!r}, token=<hidden>)"

    def dispatch(self, repo: str, payload: Mapping[str, Any], event_type: str = EVENT_TYPE) -> int:
        """Send one event to ``repo``; return the attempts used or raise ``DispatchError``."""
        body = check_request(repo, event_type, payload)
        for attempt in range(1, self.attempts + 1):
            status, headers, text = self._post(repo, body)
            if status in (200, 204):
                return attempt
            wait = retry_delay(status, headers, attempt, self.backoff_s)
            if wait is None or attempt == self.attempts:
                raise DispatchError(repo, status, failure_message(status, text, attempt))
            self._sleep(wait)
        raise AssertionError("unreachable")  # pragma: no cover

    def dispatch_all(
        self, repos: Sequence[str], payload: Mapping[str, Any], event_type: str = EVENT_TYPE
    ) -> list[DispatchResult]:
        """Send to every repository, never stopping at the first failure; return one result each."""
        results: list[DispatchResult] = []
        for repo in repos:
            try:
                attempts = self.dispatch(repo, payload, event_type)
            except DispatchError as exc:
                results.append(DispatchResult(repo, False, exc.status, 0, str(exc)))
            except ContractsError as exc:
                results.append(DispatchResult(repo, False, None, 0, f"{repo}: {exc}"))
            else:
                results.append(DispatchResult(repo, True, 204, attempts, f"{repo}: dispatched"))
        return results

    def _post(self, repo: str, body: bytes) -> tuple[int | None, Message | None, str]:
        request = urllib.request.Request(
            f"{self.api_url}/repos/{repo}/dispatches",
            data=body,
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
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                return int(response.status), response.headers, ""
        except urllib.error.HTTPError as exc:
            text = exc.read().decode("utf-8", "replace")
            return exc.code, exc.headers, text
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            reason = getattr(exc, "reason", exc)
            return None, None, f"connection failed: {reason}"


def retry_delay(
    status: int | None,
    headers: Message | None,
    attempt: int,
    backoff_s: float,
    now: float | None = None,
) -> float | None:
    """Return seconds to wait before retrying, or None when the failure is final."""
    retry_after = _header_float(headers, "Retry-After")
    remaining = _header_float(headers, "x-ratelimit-remaining")
    reset = _header_float(headers, "x-ratelimit-reset")
    rate_limited = status == 429 or (status == 403 and (retry_after is not None or remaining == 0))
    if not rate_limited and not (status is None or status >= 500):
        return None
    if retry_after is not None:
        return min(max(retry_after, 0.0), MAX_WAIT_S)
    if remaining == 0 and reset is not None:
        return min(max(reset - (now if now is not None else time.time()), 0.0) + 1.0, MAX_WAIT_S)
    return min(backoff_s * 2.0 ** (attempt - 1), MAX_WAIT_S)


def failure_message(status: int | None, body: str, attempts: int) -> str:
    """Return a readable cause for a final failure (GitHub's own message appended)."""
    if status is None:
        return f"{body} after {attempts} attempt(s)"
    github = _github_message(body)
    cause = _CAUSES.get(status, f"GitHub answered HTTP {status}")
    if status in (403, 429) and attempts > 1:
        cause = "rate limited by GitHub and still limited after retries"
    suffix = f" (GitHub: {github})" if github else ""
    return f"HTTP {status}: {cause}{suffix}; {attempts} attempt(s)"


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
