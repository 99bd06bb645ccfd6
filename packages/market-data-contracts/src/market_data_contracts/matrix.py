"""Run the contract suite in one isolated environment per (Core release, Python) cell, in parallel.

Each cell builds its environment (``envs.build_cell_env``), runs the suite with that
environment's interpreter and reads its JUnit report. A cell ends in one ``Verdict``
(``verdict.py``): ``error`` when its environment could not be built (a release not on the index,
a Python not installed here), otherwise what ``verdict.decide`` makes of the report. A cell named
in ``[tool.mdp.contracts] expected-failures`` is as expected only when ``incompatible``.

The matrix's verdict is the most severe of its cells' that are not as expected (``compatible``
when every cell is), so a declared failure never turns the matrix red and an unexpected pass does.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from . import compat, envs
from .errors import ContractsError
from .junit import SuiteReport, judge_suite, remove_report, write_verdict_properties
from .settings import ContractsSettings
from .verdict import ContractResult, Verdict, combine, decide

# A backstop only: every contract test has its own timeout and the first one to run past it ends
# the suite (tests/contracts/conftest.py), so a Core edit that hangs costs about a minute; this
# bounds what a per-test timeout cannot interrupt. The suite itself takes 10-40 s (more when the
# machine is loaded: a suite cut short here is an error, so the margin is wide).
SUITE_TIMEOUT_S = 240
_DIFF_LINES = 12

# The outer virtualenv must not leak in, nor snapshot recording (a cell only checks).
_NOT_INHERITED = frozenset({"VIRTUAL_ENV", "PYTHONPATH", "MDP_UPDATE_SNAPSHOTS"})

Progress = Callable[["Cell", str], None]


@dataclass(frozen=True)
class Cell:
    """One (Core, Python) combination of the matrix."""

    core: str
    python: str

    @property
    def cell_id(self) -> str:
        """Return a name usable as a folder or file name: ``core-1.2.0-py3.11``."""
        safe = "".join(ch if ch.isalnum() or ch in ".-_" else "_" for ch in self.core)
        return f"core-{safe}-py{self.python}"


@dataclass
class CellResult:
    """What one cell did: its ``ContractResult`` plus timings and where its files are."""

    contract: ContractResult
    setup_s: float = 0.0
    suite_s: float = 0.0
    junit: str | None = None
    log: str | None = None

    @property
    def verdict(self) -> Verdict:
        """Return the cell's verdict."""
        return self.contract.verdict

    @property
    def as_expected(self) -> bool:
        """Return whether this cell ended the way the project expects."""
        return self.contract.as_expected

    def to_json(self) -> dict[str, Any]:
        """Return the result as plain JSON data: the contract result, timings and paths."""
        data = self.contract.to_json()
        data.update(asdict(self))
        del data["contract"]
        data["as_expected"] = self.as_expected
        return data


def core_source(core: str) -> str:
    """Return where a requested Core comes from: ``index``, ``git``, ``url`` or ``installed``."""
    if core == "installed":
        return "installed"
    if core.startswith("git+"):
        return "git"
    return "url" if "://" in core else "index"


def contract_result(
    *,
    core: str,
    python: str,
    core_version: str | None,
    report: SuiteReport,
    setup_error: str | None = None,
    suite_error: str | None = None,
    duration_s: float = 0.0,
    expected_failure: str | None = None,
) -> ContractResult:
    """Decide the verdict of one run and return its result (the one place that does)."""
    verdict, reason = decide(
        report.counts, notices=report.notices, setup_error=setup_error, suite_error=suite_error
    )
    if verdict is Verdict.INCOMPATIBLE and report.first_failure is not None:
        first = report.first_failure
        reason = f"{first.contract or first.test_id}: {first.message}"
    return ContractResult(
        verdict=verdict,
        core_requested=core,
        core_version=core_version,
        core_source=core_source(core),
        python=python,
        counts=report.counts,
        first_failure=report.first_failure,
        notices=report.notices,
        reason=reason,
        expected_failure=expected_failure,
        duration_s=round(duration_s, 2),
    )


def with_surface_diff(
    result: ContractResult, baseline: dict[str, Any] | None, current: dict[str, Any] | None
) -> ContractResult:
    """Attach Core's surface changes for the first failure's symbols (all breaking ones if none)."""
    first = result.first_failure
    if first is None or baseline is None or current is None:
        return result
    findings = compat.compare_surfaces(baseline, current)
    involved = [f for f in findings if any(f.where.startswith(s) for s in first.symbols)]
    chosen = involved or [f for f in findings if f.severity == "breaking"]
    lines = tuple(f.describe() for f in chosen[:_DIFF_LINES])
    return dataclasses.replace(result, first_failure=dataclasses.replace(first, surface_diff=lines))


def plan_cells(cores: Sequence[str], pythons: Sequence[str]) -> list[Cell]:
    """Return every (core, python) cell, Core-major, without duplicates."""
    seen: dict[Cell, None] = {}
    for core in cores:
        for python in pythons:
            seen[Cell(core.strip(), python.strip())] = None
    if not seen:
        raise ContractsError("the matrix has no cell: give at least one Core and one Python")
    return list(seen)


def run_matrix(
    settings: ContractsSettings,
    cells: Sequence[Cell],
    out_dir: Path,
    *,
    jobs: int,
    progress: Progress | None = None,
) -> list[CellResult]:
    """Run every cell (``jobs`` at a time) and return their results in cell order."""
    out_dir.mkdir(parents=True, exist_ok=True)
    notify = progress or (lambda cell, phase: None)
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = [pool.submit(run_cell, settings, cell, out_dir, notify) for cell in cells]
        return [future.result() for future in futures]


def run_cell(
    settings: ContractsSettings, cell: Cell, out_dir: Path, notify: Progress
) -> CellResult:
    """Build the cell's environment, run the suite in it and decide its verdict."""
    log = out_dir / f"{cell.cell_id}.log"
    log.write_text("", encoding="utf-8")
    remove_report(junit_path(out_dir, cell))  # a broken cell must not show an old report
    expected = settings.expected_failure(cell.core, cell.python)
    reason = expected.reason if expected else None
    python = envs.find_python(cell.python)
    if python is None:
        notify(cell, "done")
        error = f"Python {cell.python} is not installed on this machine"
        return _setup_failed(cell, error, log, reason, 0.0)
    notify(cell, "installing")
    started = time.perf_counter()
    try:
        env = envs.build_cell_env(
            root=settings.root,
            core=cell.core,
            python=python,
            path=out_dir / "envs" / cell.cell_id,
            extras=settings.extras,
            log=log,
        )
    except ContractsError as exc:
        notify(cell, "done")
        return _setup_failed(cell, str(exc), log, reason, time.perf_counter() - started)
    setup_s = round(time.perf_counter() - started, 2)
    notify(cell, "testing")
    result = _run_suite(settings, cell, env, out_dir, log, reason)
    result.setup_s = setup_s
    notify(cell, "done")
    return result


def _setup_failed(
    cell: Cell, error: str, log: Path, expected: str | None, setup_s: float
) -> CellResult:
    contract = contract_result(
        core=cell.core,
        python=cell.python,
        core_version=None,
        report=SuiteReport(),
        setup_error=error,
        expected_failure=expected,
    )
    return CellResult(contract, setup_s=round(setup_s, 2), log=str(log))


def junit_path(out_dir: Path, cell: Cell) -> Path:
    """Return where a cell's JUnit report is written."""
    return out_dir / f"junit-{cell.cell_id}.xml"


def _run_suite(
    settings: ContractsSettings,
    cell: Cell,
    env: envs.CellEnv,
    out_dir: Path,
    log: Path,
    expected: str | None,
) -> CellResult:
    junit = junit_path(out_dir, cell)
    remove_report(junit)
    argv = [str(env.python), "-m", "pytest", settings.suite, "-m", "contracts", "-q"]
    argv += ["-p", "no:cacheprovider", f"--junitxml={junit}"]
    started, started_at = time.perf_counter(), time.time()
    code: int | None = None
    with log.open("a", encoding="utf-8") as out:
        out.write(f"$ {' '.join(argv)}\n")
        out.flush()
        try:
            code = subprocess.run(
                argv,
                cwd=settings.root,
                env=cell_environment(env),
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=SUITE_TIMEOUT_S,
                check=False,
            ).returncode
        except subprocess.TimeoutExpired:
            out.write(f"suite timed out after {SUITE_TIMEOUT_S} s\n")
    suite_s = time.perf_counter() - started
    report, suite_error = judge_suite(code, junit, started_at)
    contract = contract_result(
        core=cell.core,
        python=cell.python,
        core_version=env.core_version,
        report=report,
        suite_error=suite_error,
        duration_s=suite_s,
        expected_failure=expected,
    )
    if contract.first_failure is not None:
        contract = with_surface_diff(contract, baseline_surface(settings), _cell_surface(env))
    write_verdict_properties(junit, contract)
    result = CellResult(contract, suite_s=round(suite_s, 2), log=str(log))
    result.junit = str(junit) if junit.is_file() else None
    return result


def baseline_surface(settings: ContractsSettings) -> dict[str, Any] | None:
    """Return the recorded surface of the Core the suite was last reviewed against, if any."""
    path = settings.root / settings.suite / "snapshots" / "surface.json"
    try:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data


def _cell_surface(env: envs.CellEnv) -> dict[str, Any] | None:
    from .surfaces import surface_with

    try:
        return surface_with(env.python)
    except ContractsError:
        return None


def cell_environment(env: envs.CellEnv) -> dict[str, str]:
    """Return the process environment for a cell: its own bin first, no outer virtualenv."""
    variables = {k: v for k, v in os.environ.items() if k not in _NOT_INHERITED}
    variables["VIRTUAL_ENV"] = str(env.path)
    variables["PATH"] = f"{env.path / 'bin'}{os.pathsep}{variables.get('PATH', '')}"
    return variables


def matrix_verdict(results: Sequence[CellResult]) -> Verdict:
    """Return the matrix's verdict: the worst of the cells not as expected, else compatible."""
    if not results:
        return Verdict.ERROR
    unexpected = [r for r in results if not r.as_expected]
    if not unexpected:
        return combine(r.verdict for r in results if r.contract.expected_failure is None)
    worst = combine(r.verdict for r in unexpected)
    # A declared failure that now passes is as wrong as a failure: the declaration is stale.
    return Verdict.INCOMPATIBLE if worst.passed else worst


def matrix_ok(results: Sequence[CellResult]) -> bool:
    """Return whether every cell ended as expected."""
    return all(result.as_expected for result in results)
