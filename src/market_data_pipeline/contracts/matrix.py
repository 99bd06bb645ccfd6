"""Run the contract suite in one isolated environment per (Core release, Python) cell, in parallel.

Each cell builds its environment (``envs.build_cell_env``), runs the suite with that
environment's interpreter and reads its JUnit report. A cell ends in one state:

    passed            the suite passed
    failed            the suite failed, or the environment could not be built
    expected-failure  it failed and ``[tool.mdp.contracts] expected-failures`` says it would
    unexpected-pass   it passed although declared expected to fail (update the declaration)
    skipped           the Python asked for is not installed here (the reason says so)

The matrix is as expected when no cell is ``failed`` or ``unexpected-pass``.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from . import envs
from .errors import ContractsError
from .junit import SuiteCounts, judge_suite, remove_report
from .settings import ContractsSettings

CellState = Literal["passed", "failed", "expected-failure", "unexpected-pass", "skipped"]
AS_EXPECTED: frozenset[str] = frozenset({"passed", "expected-failure", "skipped"})
_SUITE_TIMEOUT_S = 300

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
    """What one cell did: its state, the Core really installed, counts and timings."""

    core: str
    python: str
    state: CellState
    core_installed: str | None = None
    counts: SuiteCounts = field(default_factory=SuiteCounts)
    reason: str | None = None
    setup_s: float = 0.0
    suite_s: float = 0.0
    junit: str | None = None
    log: str | None = None

    @property
    def as_expected(self) -> bool:
        """Return whether this cell ended the way the project expects."""
        return self.state in AS_EXPECTED

    def to_json(self) -> dict[str, Any]:
        """Return the result as plain JSON data."""
        data = asdict(self)
        data["counts"] = asdict(self.counts)
        data["as_expected"] = self.as_expected
        return data


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
    """Build the cell's environment, run the suite in it and classify the outcome."""
    log = out_dir / f"{cell.cell_id}.log"
    log.write_text("", encoding="utf-8")
    remove_report(junit_path(out_dir, cell))  # a skipped or broken cell must not show an old report
    python = envs.find_python(cell.python)
    if python is None:
        notify(cell, "skipped")
        reason = f"Python {cell.python} is not installed on this machine"
        return CellResult(cell.core, cell.python, "skipped", reason=reason, log=str(log))
    notify(cell, "installing")
    started = time.perf_counter()
    try:
        env = envs.build_cell_env(
            root=settings.root,
            core=cell.core,
            python=python,
            path=out_dir / "envs" / cell.cell_id,
            extras=settings.extras,
            requirements=settings.suite_requirements,
            log=log,
        )
    except ContractsError as exc:
        notify(cell, "done")
        result = CellResult(cell.core, cell.python, "failed", reason=str(exc), log=str(log))
        result.setup_s = round(time.perf_counter() - started, 2)
        return classify(result, settings)
    setup_s = round(time.perf_counter() - started, 2)
    notify(cell, "testing")
    result = _run_suite(settings, cell, env, out_dir, log)
    result.setup_s = setup_s
    notify(cell, "done")
    return classify(result, settings)


def junit_path(out_dir: Path, cell: Cell) -> Path:
    """Return where a cell's JUnit report is written."""
    return out_dir / f"junit-{cell.cell_id}.xml"


def _run_suite(
    settings: ContractsSettings, cell: Cell, env: envs.CellEnv, out_dir: Path, log: Path
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
                timeout=_SUITE_TIMEOUT_S,
                check=False,
            ).returncode
        except subprocess.TimeoutExpired:
            out.write(f"suite timed out after {_SUITE_TIMEOUT_S} s\n")
    result = CellResult(cell.core, cell.python, "failed", core_installed=env.core_version)
    result.suite_s, result.log = round(time.perf_counter() - started, 2), str(log)
    result.counts, reason = judge_suite(code, junit, started_at)
    if junit.is_file():
        result.junit = str(junit)
    result.state = "passed" if reason is None else "failed"
    result.reason = reason
    return result


def cell_environment(env: envs.CellEnv) -> dict[str, str]:
    """Return the process environment for a cell: its own bin first, no outer virtualenv."""
    variables = {k: v for k, v in os.environ.items() if k not in _NOT_INHERITED}
    variables["VIRTUAL_ENV"] = str(env.path)
    variables["PATH"] = f"{env.path / 'bin'}{os.pathsep}{variables.get('PATH', '')}"
    return variables


def classify(result: CellResult, settings: ContractsSettings) -> CellResult:
    """Apply the declared expected failures to a passed or failed cell."""
    expected = settings.expected_failure(result.core, result.python)
    if expected is None or result.state == "skipped":
        return result
    if result.state == "failed":
        result.state = "expected-failure"
        result.reason = f"expected: {expected.reason} (first failure: {result.reason})"
    elif result.state == "passed":
        result.state = "unexpected-pass"
        result.reason = f"declared expected to fail ({expected.reason}) but passed"
    return result


def matrix_ok(results: Sequence[CellResult]) -> bool:
    """Return whether every cell ended as expected."""
    return all(result.as_expected for result in results)
