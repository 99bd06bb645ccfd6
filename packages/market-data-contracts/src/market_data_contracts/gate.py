"""``can-i-deploy``: does a Core version fit every required downstream, according to the ledger?

For each required repository the answer looks at its **latest recorded commit** (the commit of
its most recently finished record, whatever Core that record tested) and at the records of that
commit for the Core version asked. Their verdicts are combined with ``verdict.combine`` (several
Pythons, re-runs): a compatible result is a yes; an incompatible one is a no, with its first
failure; none at all, or only incomplete or errored runs, is unknown. Overall: every repository
yes -> exit 0; any no -> exit 1; otherwise exit 2.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from .errors import ContractsError
from .record import VerificationRecord
from .verdict import Verdict, combine

# A release's public version (PEP 440: 1.4.61, 1.5.0rc1, 1.5.0.post1), as package metadata gives
# Core's version in every record; anything else could only ever be answered "unknown".
_VERSION = re.compile(r"\d+(\.\d+)*((a|b|rc)\d+)?(\.post\d+)?(\.dev\d+)?")


def check_core_version(core: str) -> str:
    """Return ``core`` when it is a release version; raise ``ContractsError`` otherwise."""
    if not _VERSION.fullmatch(core):
        raise ContractsError(f"--core {core!r} is not a Core release version (e.g. 1.4.61)")
    return core


class Answer(StrEnum):
    """One repository's answer, and the whole question's."""

    YES = "yes"
    NO = "no"
    UNKNOWN = "unknown"

    @property
    def exit_code(self) -> int:
        """Return the documented exit code: 0 yes, 1 no, 2 unknown."""
        return {Answer.YES: 0, Answer.NO: 1, Answer.UNKNOWN: 2}[self]


@dataclass(frozen=True)
class RepoAnswer:
    """The answer for one repository, with what it rests on."""

    repo: str
    answer: Answer
    commit: str | None
    verdict: Verdict | None
    detail: str
    run_url: str | None = None


@dataclass(frozen=True)
class Decision:
    """The answer for a Core version over every required repository."""

    core: str
    answer: Answer
    repos: tuple[RepoAnswer, ...]

    def to_json(self) -> dict[str, object]:
        """Return the decision as plain JSON data."""
        return {
            "core": self.core,
            "answer": self.answer.value,
            "exit_code": self.answer.exit_code,
            "repos": [
                {
                    "repo": r.repo,
                    "answer": r.answer.value,
                    "commit": r.commit,
                    "verdict": r.verdict.value if r.verdict else None,
                    "detail": r.detail,
                    "run_url": r.run_url,
                }
                for r in self.repos
            ],
        }


def can_i_deploy(
    core: str, required: Sequence[str], records: Sequence[VerificationRecord]
) -> Decision:
    """Decide whether ``core`` fits every repository in ``required``, from ``records``."""
    answers = tuple(_answer(repo, core, records) for repo in dict.fromkeys(required))
    kinds = {a.answer for a in answers}
    if Answer.NO in kinds:
        overall = Answer.NO
    elif Answer.UNKNOWN in kinds or not answers:
        overall = Answer.UNKNOWN
    else:
        overall = Answer.YES
    return Decision(core, overall, answers)


def _answer(repo: str, core: str, records: Sequence[VerificationRecord]) -> RepoAnswer:
    mine = [r for r in records if r.repo == repo]
    if not mine:
        return RepoAnswer(repo, Answer.UNKNOWN, None, None, "no record of this repository")
    latest = max(mine, key=lambda r: r.finished_at)
    tested = [r for r in mine if r.commit == latest.commit and r.core_version == core]
    if not tested:
        detail = f"no result for Core {core} at its latest recorded commit {latest.commit[:12]}"
        return RepoAnswer(repo, Answer.UNKNOWN, latest.commit, None, detail)
    verdict = combine(r.verdict for r in tested)
    worst = next(r for r in reversed(tested) if r.verdict is verdict)
    if verdict.passed:
        return RepoAnswer(repo, Answer.YES, latest.commit, verdict, verdict.label, worst.run_url)
    if verdict is Verdict.INCOMPATIBLE:
        failure = worst.result.first_failure
        detail = f"{failure.test_id}: {failure.message}" if failure else worst.result.reason or ""
        return RepoAnswer(repo, Answer.NO, latest.commit, verdict, detail, worst.run_url)
    detail = f"{verdict.label}: {worst.result.reason or 'no reason recorded'}"
    return RepoAnswer(repo, Answer.UNKNOWN, latest.commit, verdict, detail, worst.run_url)
