"""The verification record: one contract run's ``ContractResult`` plus where and what it tested.

Every ``mdp contracts run``, matrix cell and fan-out run yields one record. The ledger stores it;
``can-i-deploy``, ``results``, the compatibility page and the commit-status reporter only read it.
The verdict is the one the result carries (``verdict.decide`` made it): nothing here re-derives it.

Provenance is read from the machine it runs on: the repository from ``[tool.mdp.contracts] repo``
or the git remote ``origin``; the commit from ``GITHUB_SHA`` or ``git rev-parse HEAD``; the run URL
from GitHub Actions' variables; where Core came from (index, git ref, wheel hash) from the
installed Core's ``direct_url.json`` (PEP 610).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .verdict import ContractResult, Verdict

RECORD_VERSION = 1
_REMOTE = re.compile(r"(?:github\.com[:/])?([A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+?)(?:\.git)?/?$")


@dataclass(frozen=True)
class CoreOrigin:
    """Where the tested Core came from: ``index``, ``git`` (with its ref) or a file (its hash)."""

    source: str
    url: str | None = None
    git_ref: str | None = None
    git_commit: str | None = None
    wheel_sha256: str | None = None


@dataclass(frozen=True)
class VerificationRecord:
    """One contract run of one repository's commit against one Core on one Python."""

    repo: str
    commit: str
    result: ContractResult
    origin: CoreOrigin
    correlation_id: str = ""
    run_url: str | None = None
    started_at: str = ""
    finished_at: str = ""

    @property
    def verdict(self) -> Verdict:
        """Return the verdict of the result this record carries."""
        return self.result.verdict

    @property
    def core_version(self) -> str:
        """Return the Core tested: the installed version, else what was asked for."""
        return self.result.core_version or self.result.core_requested

    @property
    def python(self) -> str:
        """Return the Python (``major.minor``) the suite ran on."""
        return self.result.python

    @property
    def key(self) -> tuple[str, str, str, str, str]:
        """Return what makes a record unique: repo, commit, Core, Python, correlation id."""
        return (self.repo, self.commit, self.core_version, self.python, self.correlation_id)

    def to_json(self) -> dict[str, Any]:
        """Return the record as plain JSON data."""
        return {
            "record_version": RECORD_VERSION,
            "repo": self.repo,
            "commit": self.commit,
            "core_version": self.core_version,
            "python": self.python,
            "verdict": self.verdict.value,
            "correlation_id": self.correlation_id,
            "run_url": self.run_url,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "origin": self.origin.__dict__,
            "result": self.result.to_json(),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> VerificationRecord:
        """Rebuild a record written by ``to_json``."""
        return cls(
            repo=str(data["repo"]),
            commit=str(data["commit"]),
            result=ContractResult.from_json(data["result"]),
            origin=CoreOrigin(**data.get("origin", {"source": "installed"})),
            correlation_id=str(data.get("correlation_id") or ""),
            run_url=data.get("run_url"),
            started_at=str(data.get("started_at") or ""),
            finished_at=str(data.get("finished_at") or ""),
        )


def now_iso() -> str:
    """Return the current UTC time as ISO-8601 with seconds (``2026-12-01T22:30:00Z``)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def build_record(
    result: ContractResult,
    *,
    repo: str,
    commit: str,
    origin: CoreOrigin | None = None,
    correlation_id: str = "",
    run_url: str | None = None,
    started_at: str | None = None,
) -> VerificationRecord:
    """Return the record of ``result`` with its provenance (``finished_at`` is now)."""
    return VerificationRecord(
        repo=repo,
        commit=commit,
        result=result,
        origin=origin or CoreOrigin(result.core_source),
        correlation_id=correlation_id,
        run_url=run_url,
        started_at=started_at or now_iso(),
        finished_at=now_iso(),
    )


def repo_from_remote(url: str) -> str | None:
    """Return ``OWNER/NAME`` from a git remote URL (https or ssh), or None."""
    match = _REMOTE.search(url.strip())
    return match.group(1) if match else None


def detect_repo(root: Path, configured: str | None, environ: Mapping[str, str]) -> str | None:
    """Return this repository's ``OWNER/NAME``: configured, ``GITHUB_REPOSITORY``, else origin."""
    if configured:
        return configured
    if environ.get("GITHUB_REPOSITORY"):
        return environ["GITHUB_REPOSITORY"]
    remote = _git(root, "remote", "get-url", "origin")
    return repo_from_remote(remote) if remote else None


def detect_commit(root: Path, environ: Mapping[str, str]) -> str:
    """Return the commit tested: ``GITHUB_SHA``, else ``git rev-parse HEAD``, else ``unknown``."""
    return environ.get("GITHUB_SHA") or _git(root, "rev-parse", "HEAD") or "unknown"


def detect_run_url(environ: Mapping[str, str]) -> str | None:
    """Return the GitHub Actions run URL from its variables, or None outside Actions."""
    keys = ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_RUN_ID")
    if not all(environ.get(k) for k in keys):
        return None
    server, repo, run_id = (environ[k] for k in keys)
    return f"{server.rstrip('/')}/{repo}/actions/runs/{run_id}"


def core_origin(direct_url: Mapping[str, Any] | None) -> CoreOrigin:
    """Return where Core came from, given its PEP 610 ``direct_url.json`` (None: the index)."""
    if not direct_url:
        return CoreOrigin("index")
    url = str(direct_url.get("url", ""))
    vcs = direct_url.get("vcs_info")
    if isinstance(vcs, dict):
        return CoreOrigin(
            "git", url, vcs.get("requested_revision"), vcs.get("commit_id"), wheel_sha256=None
        )
    archive = direct_url.get("archive_info")
    digest = None
    if isinstance(archive, dict):
        hashes = archive.get("hashes") or {}
        digest = hashes.get("sha256") or str(archive.get("hash", "")).removeprefix("sha256=")
    return CoreOrigin("path", url, wheel_sha256=digest or None)


def installed_core_origin() -> CoreOrigin:
    """Return where the installed Core came from (``installed`` when Core is missing)."""
    import importlib.metadata

    try:
        dist = importlib.metadata.distribution("market-data-core")
    except importlib.metadata.PackageNotFoundError:
        return CoreOrigin("installed")
    text = dist.read_text("direct_url.json")
    return core_origin(json.loads(text) if text else None)


def _git(root: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", *args], cwd=root, capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() or None if done.returncode == 0 else None


def env_correlation_id(environ: Mapping[str, str] | None = None) -> str:
    """Return the correlation id given to this run (``MDP_CORRELATION_ID``), or empty."""
    return (environ if environ is not None else os.environ).get("MDP_CORRELATION_ID", "").strip()


def suite_result(
    counts: Any,
    reason: str | None,
    *,
    core_requested: str,
    core_version: str | None,
    core_source: str,
    python: str,
    setup_error: str | None = None,
    expected_failure: str | None = None,
) -> ContractResult:
    """Return the ``ContractResult`` of a suite run from its JUnit counts (``verdict.decide``).

    ``counts`` is a ``junit.SuiteCounts``; ``reason`` the run's failure reason, if any (a run that
    did not finish normally with no failing test is a suite error).
    """
    from .verdict import Counts, Failure, decide

    core_counts = Counts(
        passed=counts.passed,
        failed=counts.failed,
        errors=counts.errors,
        skipped=counts.skipped,
        xfailed=counts.xfailed,
    )
    suite_error = reason if reason is not None and not (counts.failed or counts.errors) else None
    verdict, why = decide(core_counts, setup_error=setup_error, suite_error=suite_error)
    first = None
    if counts.first_failure:
        test_id, _, message = str(counts.first_failure).partition(": ")
        first = Failure(test_id=test_id, message=message or test_id)
    return ContractResult(
        verdict=verdict,
        core_requested=core_requested,
        core_version=core_version,
        core_source=core_source,
        python=python,
        counts=core_counts,
        first_failure=first,
        reason=why,
        expected_failure=expected_failure,
        duration_s=float(counts.duration_s),
    )
