"""Send ``repository_dispatch`` events (type ``core-release``) to downstream repositories.

``POST {api}/repos/{owner}/{repo}/dispatches`` with ``{"event_type", "client_payload"}``; GitHub
answers 204, the only answer taken as success. Limits checked before sending: ``event_type`` at
most 100 characters, ``client_payload`` at most 10 top-level keys and the whole body under 64 KB.
Retried with backoff: 5xx, network and protocol errors, 429, and rate limits on 403
(``Retry-After``, ``x-ratelimit-remaining: 0``, or GitHub's "secondary rate limit" message, after
which GitHub asks to wait at least a minute). Redirects are never followed (the token would go
along): a 3xx fails as "moved or renamed". 401/403/404/422 end with a message naming the
repository and the likely cause. The token is only ever placed in the ``Authorization`` header
and scrubbed from every message. Bounded: an answer is read up to ``github.MAX_ANSWER_BYTES``
and quoted to ``MAX_QUOTE_CHARS``; all attempts for one repository share ``budget_s`` (no
request or wait runs past it), and every wait is announced on the log before it starts.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from email.message import Message
from typing import Any

from .defaults import DEFAULT_GITHUB_API_URL, DISPATCH_EVENT_TYPE
from .errors import ContractsError, DispatchError
from .github import (
    REPO_NAME,
    SECONDARY_LIMIT_WAIT_S,
    GitHubClient,
    check_token,
    failure_message,
    retry_delay,
)

DEFAULT_API_URL = DEFAULT_GITHUB_API_URL
EVENT_TYPE = DISPATCH_EVENT_TYPE
MAX_PAYLOAD_KEYS = 10
MAX_BODY_BYTES = 64 * 1024
MAX_EVENT_TYPE_CHARS = 100
DEFAULT_ATTEMPTS = 5
DEFAULT_BACKOFF_S = 1.0
DEFAULT_BUDGET_S = 180.0  # all attempts for one repository, waits included
log = logging.getLogger(__name__)
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
    if not REPO_NAME.match(repo):
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
        secondary_limit_wait_s: float = SECONDARY_LIMIT_WAIT_S,
        timeout_s: float = 30.0,
        sleep: Callable[[float], None] | None = None,
        budget_s: float = DEFAULT_BUDGET_S,
    ) -> None:
        self._token = check_token(token)
        self._http = GitHubClient(self._token, api_url=api_url, timeout_s=timeout_s)
        self.api_url = self._http.api_url
        self.attempts = max(1, attempts)
        self.backoff_s = backoff_s
        self.secondary_limit_wait_s = secondary_limit_wait_s
        self.timeout_s = timeout_s
        self._sleep = sleep or time.sleep
        self.budget_s = budget_s

    def __repr__(self) -> str:
        return f"DispatchClient(api_url={self.api_url!r}, token=<hidden>)"

    def dispatch(self, repo: str, payload: Mapping[str, Any], event_type: str = EVENT_TYPE) -> int:
        """Send one event to ``repo``; return the attempts used or raise ``DispatchError``."""
        body = check_request(repo, event_type, payload)
        started, waited = time.monotonic(), 0.0
        for attempt in range(1, self.attempts + 1):
            # Waits count even when ``sleep`` does not really sleep (tests, dry runs).
            left_s = self.budget_s - max(time.monotonic() - started, waited)
            status, headers, text = self._post(repo, body, left_s)
            if status == 204:
                return attempt
            wait = retry_delay(
                status,
                headers,
                attempt,
                self.backoff_s,
                body=text,
                secondary_limit_wait_s=self.secondary_limit_wait_s,
            )
            left_s = self.budget_s - max(time.monotonic() - started, waited)
            over = wait is not None and wait >= left_s
            if wait is None or attempt == self.attempts or over:
                message = self.scrub(failure_message(status, text, attempt, causes=_CAUSES))
                if over:
                    message += (
                        f"; stopped: the next retry would pass the {self.budget_s:g} s budget"
                    )
                raise DispatchError(repo, status, message, attempt)
            log.warning(
                "%s: %s; retrying in %.0f s (attempt %d of %d, %.0f s of the budget left)",
                repo,
                "no answer" if status is None else f"HTTP {status}",
                wait,
                attempt + 1,
                self.attempts,
                left_s,
            )
            self._sleep(wait)
            waited += wait
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
                message = self.scrub(str(exc))
                results.append(DispatchResult(repo, False, exc.status, exc.attempts, message))
            except Exception as exc:  # one repository's failure must never stop the others
                message = self.scrub(f"{repo}: {type(exc).__name__}: {exc}")
                results.append(DispatchResult(repo, False, None, 0, message))
            else:
                results.append(DispatchResult(repo, True, 204, attempts, f"{repo}: dispatched"))
        return results

    def scrub(self, text: str) -> str:
        """Return ``text`` with the token (and its ``Bearer`` header form) masked."""
        return text.replace(self._token, "***")

    def _post(
        self, repo: str, body: bytes, left_s: float | None = None
    ) -> tuple[int | None, Message | None, str]:
        timeout_s = max(0.1, min(self.timeout_s, self.timeout_s if left_s is None else left_s))
        return self._http.send(f"/repos/{repo}/dispatches", body, timeout_s=timeout_s)
