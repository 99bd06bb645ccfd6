"""One verdict for every contract run and matrix cell, and the result it is read from.

A run of the contract suite against one Core (``mdp contracts run``, one matrix cell, a
workflow job) ends in exactly one ``Verdict``; its exit code is the same everywhere:

    verdict                    exit  meaning
    compatible                 0     every required contract test ran and passed
    compatible_with_notices    0     passed; Core changed something worth a look (a defect the
                                     pipeline works around was fixed, an additive change)
    incompatible               1     a contract test failed: the pipeline would break on this Core
    (bad arguments)            2     the command line or a payload was refused (never a verdict)
    incomplete                 3     something required did not run: a service was missing, or
                                     tests were skipped for a reason other than a capability Core
                                     lacks
    error                      4     set-up failed: the release is not on the index, the Python
                                     asked for is not installed, the suite could not start

Several verdicts (a matrix) combine to the most severe one, in the order
incompatible > error > incomplete > compatible_with_notices > compatible: a proven break is the
most useful thing to report, a set-up error next, a partial run after that.

``ContractResult`` is the typed record a verdict is derived from and travels with (JSON
round-trip via ``to_json``/``from_json``). Nothing else derives a verdict: call ``decide``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

SCHEMA_VERSION = 1


class Verdict(StrEnum):
    """How one run or matrix cell ended; ``value`` is the stable machine value."""

    COMPATIBLE = "compatible"
    COMPATIBLE_WITH_NOTICES = "compatible_with_notices"
    INCOMPATIBLE = "incompatible"
    INCOMPLETE = "incomplete"
    ERROR = "error"

    @property
    def label(self) -> str:
        """Return the words shown to people: ``compatible with notices``."""
        return self.value.replace("_", " ")

    @property
    def exit_code(self) -> int:
        """Return the process exit code documented for this verdict."""
        return EXIT_CODES[self]

    @property
    def passed(self) -> bool:
        """Return whether the pipeline fits this Core (with or without notices)."""
        return self in (Verdict.COMPATIBLE, Verdict.COMPATIBLE_WITH_NOTICES)

    @property
    def severity(self) -> int:
        """Return the rank used to combine verdicts; higher is worse."""
        return _SEVERITY.index(self)


EXIT_CODES: Mapping[Verdict, int] = {
    Verdict.COMPATIBLE: 0,
    Verdict.COMPATIBLE_WITH_NOTICES: 0,
    Verdict.INCOMPATIBLE: 1,
    Verdict.INCOMPLETE: 3,
    Verdict.ERROR: 4,
}
EXIT_BAD_ARGUMENTS = 2
_SEVERITY = (
    Verdict.COMPATIBLE,
    Verdict.COMPATIBLE_WITH_NOTICES,
    Verdict.INCOMPLETE,
    Verdict.ERROR,
    Verdict.INCOMPATIBLE,
)


def combine(verdicts: Iterable[Verdict]) -> Verdict:
    """Return the most severe of ``verdicts``; ``error`` when there is none (nothing ran)."""
    found = list(verdicts)
    return max(found, key=lambda v: v.severity) if found else Verdict.ERROR


@dataclass(frozen=True)
class Counts:
    """Test outcome counts of one run.

    ``skipped`` counts every skip; ``not_applicable`` is the part of it skipped because Core
    lacks a capability (fine); the rest are skips that make a run ``incomplete``.
    """

    passed: int = 0
    failed: int = 0
    errors: int = 0
    skipped: int = 0
    not_applicable: int = 0
    xfailed: int = 0

    @property
    def total(self) -> int:
        """Return how many tests ran or were skipped."""
        return self.passed + self.failed + self.errors + self.skipped + self.xfailed

    @property
    def missing(self) -> int:
        """Return how many required tests did not run (skips not explained by a capability)."""
        return self.skipped - self.not_applicable


@dataclass(frozen=True)
class Failure:
    """The first failing contract: which test, what it says, what in Core it is about.

    ``contract`` names the contract in a few words (``schema FeedbackEvent``, ``protocol
    RateController.apply``); ``symbols`` the Core symbols involved; ``surface_diff`` Core's
    surface changes for those symbols, one line each (empty when no baseline was available).
    """

    test_id: str
    message: str
    contract: str | None = None
    symbols: tuple[str, ...] = ()
    surface_diff: tuple[str, ...] = ()


@dataclass(frozen=True)
class Notice:
    """Something a passing run wants a person to see.

    ``kind`` is one of ``defect-fixed`` (Core fixed a defect; ``workaround`` names the code that
    can go), ``additive`` (Core added something the pipeline does not use yet) or
    ``not-applicable`` (tests skipped because Core lacks a capability).
    """

    kind: str
    message: str
    test_id: str | None = None
    workaround: str | None = None


@dataclass(frozen=True)
class ContractResult:
    """Everything one run or cell produced, from which its verdict was decided.

    ``core_requested`` is what was asked (``1.4.61``, ``latest``, a git URL, ``installed``);
    ``core_version`` what package metadata says was installed (None when set-up failed);
    ``core_source`` where it came from: ``index``, ``git``, ``path`` or ``installed``.
    ``python`` is the interpreter's ``major.minor``. ``reason`` is one line saying why the
    verdict is not ``compatible`` (None when it is). ``expected_failure`` carries the declared
    reason when the matrix expects this cell to be incompatible.
    """

    verdict: Verdict
    core_requested: str
    core_version: str | None
    core_source: str
    python: str
    counts: Counts = field(default_factory=Counts)
    first_failure: Failure | None = None
    notices: tuple[Notice, ...] = ()
    reason: str | None = None
    expected_failure: str | None = None
    duration_s: float = 0.0

    @property
    def exit_code(self) -> int:
        """Return the exit code of this result's verdict."""
        return self.verdict.exit_code

    @property
    def as_expected(self) -> bool:
        """Return whether this ended as the project expects (passed, or a declared failure)."""
        if self.expected_failure is not None:
            return self.verdict is Verdict.INCOMPATIBLE
        return self.verdict.passed

    def to_json(self) -> dict[str, Any]:
        """Return the result as plain JSON data (``verdict`` as its machine value)."""
        data = asdict(self)
        data["schema_version"] = SCHEMA_VERSION
        data["verdict"] = self.verdict.value
        data["verdict_label"] = self.verdict.label
        data["exit_code"] = self.exit_code
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ContractResult:
        """Rebuild a result written by ``to_json``."""
        first = data.get("first_failure")
        return cls(
            verdict=Verdict(data["verdict"]),
            core_requested=str(data["core_requested"]),
            core_version=data.get("core_version"),
            core_source=str(data["core_source"]),
            python=str(data["python"]),
            counts=Counts(**data.get("counts", {})),
            first_failure=None if first is None else _failure(first),
            notices=tuple(Notice(**n) for n in data.get("notices", ())),
            reason=data.get("reason"),
            expected_failure=data.get("expected_failure"),
            duration_s=float(data.get("duration_s", 0.0)),
        )


def _failure(data: Mapping[str, Any]) -> Failure:
    return Failure(
        test_id=str(data["test_id"]),
        message=str(data["message"]),
        contract=data.get("contract"),
        symbols=tuple(data.get("symbols", ())),
        surface_diff=tuple(data.get("surface_diff", ())),
    )


def decide(
    counts: Counts,
    *,
    notices: Sequence[Notice] = (),
    setup_error: str | None = None,
    suite_error: str | None = None,
) -> tuple[Verdict, str | None]:
    """Return the verdict of a run and the one-line reason (None for ``compatible``).

    ``setup_error`` is why the environment could not be built; ``suite_error`` why the suite
    did not finish normally (timed out, collection error, no report). A failure beats missing
    tests: a broken contract is known even when other tests could not run.
    """
    if setup_error is not None:
        return Verdict.ERROR, setup_error
    if counts.failed or counts.errors:
        return Verdict.INCOMPATIBLE, f"{counts.failed + counts.errors} contract test(s) failed"
    if suite_error is not None:
        return Verdict.ERROR, suite_error
    if counts.passed + counts.xfailed == 0:
        return Verdict.INCOMPLETE, "no contract test ran"
    if counts.missing > 0:
        return Verdict.INCOMPLETE, f"{counts.missing} required test(s) skipped"
    if notices:
        return Verdict.COMPATIBLE_WITH_NOTICES, f"{len(notices)} notice(s)"
    return Verdict.COMPATIBLE, None
