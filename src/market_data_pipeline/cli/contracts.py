"""``mdp contracts``: the Core contract suite, the Core-version matrix, surface/diff and dispatch.

Core is imported only by the commands that inspect it (``surface`` without ``--core``), so the
other commands start fast.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from ..contracts import diff, dispatch, matrix, report, settings
from ..contracts.errors import ContractsError
from ..contracts.junit import SuiteCounts, judge_suite, remove_report

if TYPE_CHECKING:
    from ..contracts.record import VerificationRecord
    from ..contracts.verdict import ContractResult

contracts_app = typer.Typer(
    name="contracts",
    help="Prove this project fits a Core release: suite, matrix, surface, diff, dispatch.",
    no_args_is_help=True,
)
DEFAULT_OUT = Path("build/contracts")
_console = Console(stderr=True)


def _fail(message: str, code: int = 1) -> typer.Exit:
    from .output import error_line

    error_line(message)  # literally: messages carry text from the network and from files
    return typer.Exit(code)


def _split(values: list[str] | None) -> list[str]:
    return [item.strip() for value in values or [] for item in value.split(",") if item.strip()]


@contracts_app.command("run")
def run_command(
    out: Annotated[
        Path, typer.Option(help="Folder for junit.xml, result.json and record.json.")
    ] = DEFAULT_OUT,
    ledger_url: Annotated[
        str | None,
        typer.Option(
            "--ledger",
            help="Publish the verification record: sqlite:///contracts.db or postgresql://...",
        ),
    ] = None,
    repo: Annotated[
        str | None,
        typer.Option(
            help="This repository's OWNER/NAME (default: [tool.mdp.contracts] repo, "
            "else the git remote origin)."
        ),
    ] = None,
    correlation_id: Annotated[
        str | None,
        typer.Option(help="The Core release run's id (default: MDP_CORRELATION_ID)."),
    ] = None,
    pytest_args: Annotated[
        list[str] | None, typer.Argument(help="Extra pytest arguments (after --).")
    ] = None,
) -> None:
    """Run the contract suite against the installed Core; write JUnit and JSON results.

    With --ledger the run's verification record is published there (see can-i-deploy).
    """
    try:
        conf = settings.load_settings()
    except ContractsError as exc:
        raise _fail(str(exc)) from exc
    ledger_url = ledger_url or os.environ.get("MDP_LEDGER") or None
    if ledger_url:
        _repo_name(conf, repo, ledger_url)  # before the suite runs, not after
    out.mkdir(parents=True, exist_ok=True)
    junit = (out / "junit.xml").resolve()
    remove_report(junit)  # a report left by an earlier run must never be read as this one's
    argv = [sys.executable, "-m", "pytest", conf.suite, "-m", "contracts", f"--junitxml={junit}"]
    argv += list(pytest_args or [])
    started_at = time.time()
    code = subprocess.run(argv, cwd=conf.root, check=False).returncode
    counts, reason = judge_suite(code, junit, started_at)
    result = {
        "core_version": _installed_core(),
        "exit_code": code,
        "state": "passed" if reason is None else "failed",
        "reason": reason,
        "counts": counts.__dict__,
    }
    contract_result = _suite_result(counts, reason)
    record = _run_record(conf, contract_result, repo, correlation_id, started_at, ledger_url)
    result["verdict"] = record.verdict.value
    (out / "result.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    _write_record(out, record, ledger_url)
    if reason is not None:
        raise _fail(f"the contract suite did not pass: {reason}", code or 1)
    raise typer.Exit(0)


def _suite_result(counts: SuiteCounts, reason: str | None) -> ContractResult:
    from ..contracts import record as rec

    return rec.suite_result(
        counts,
        reason,
        core_requested=os.environ.get("MDP_CORE_REQUESTED") or "installed",
        core_version=_installed_core(),
        core_source=rec.installed_core_origin().source,
        python=f"{sys.version_info.major}.{sys.version_info.minor}",
    )


def _run_record(
    conf: settings.ContractsSettings,
    result: ContractResult,
    repo: str | None,
    correlation_id: str | None,
    started_at: float,
    ledger_url: str | None,
) -> VerificationRecord:
    """Return the verification record of this run's ``result`` with its provenance."""
    from ..contracts import record as rec

    origin = rec.installed_core_origin()
    name = _repo_name(conf, repo, ledger_url)
    return rec.build_record(
        result,
        repo=name,
        commit=rec.detect_commit(conf.root, os.environ),
        origin=origin,
        correlation_id=correlation_id or rec.env_correlation_id(),
        run_url=rec.detect_run_url(os.environ),
        started_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started_at)),
    )


def _repo_name(conf: settings.ContractsSettings, repo: str | None, ledger_url: str | None) -> str:
    from ..contracts import record as rec

    name = rec.detect_repo(conf.root, repo or conf.repo, os.environ)
    if name is None and ledger_url:
        raise _fail(
            "cannot tell which repository this is: pass --repo OWNER/NAME or set "
            "[tool.mdp.contracts] repo",
            2,
        )
    return name or "unknown/unknown"


def _write_record(out: Path, record: VerificationRecord, ledger_url: str | None) -> None:
    """Write ``out/record.json``, note ``out`` for ``report``, publish to the ledger if asked."""
    text = json.dumps(record.to_json(), indent=2) + "\n"
    (out / "record.json").write_text(text, encoding="utf-8")
    with contextlib.suppress(OSError):
        DEFAULT_OUT.mkdir(parents=True, exist_ok=True)
        (DEFAULT_OUT / "last-run").write_text(str(out.resolve()) + "\n", encoding="utf-8")
    _publish([record], ledger_url)


def _publish(records: list[VerificationRecord], ledger_url: str | None) -> None:
    if not ledger_url:
        return
    from ..contracts.ledger import open_ledger

    try:
        target = open_ledger(ledger_url)
        target.publish(records)
    except ContractsError as exc:
        raise _fail(str(exc)) from exc
    _console.print(f"{len(records)} record(s) published to {target.describe()}", highlight=False)


def _installed_core() -> str | None:
    import importlib.metadata

    try:
        return importlib.metadata.version("market-data-core")
    except importlib.metadata.PackageNotFoundError:
        return None


@contracts_app.command("matrix")
def matrix_command(
    core: Annotated[
        list[str] | None, typer.Option(help="Core releases, comma separated (or 'latest').")
    ] = None,
    python: Annotated[list[str] | None, typer.Option(help="Pythons, e.g. 3.11,3.12.")] = None,
    jobs: Annotated[int, typer.Option(min=1, help="Cells run at once.")] = os.cpu_count() or 2,
    out: Annotated[Path, typer.Option(help="Folder for matrix.json, matrix.md, JUnit.")] = (
        DEFAULT_OUT / "matrix"
    ),
    allow_missing_python: Annotated[
        bool, typer.Option(help="A Python not installed here skips its cells instead of failing.")
    ] = False,
    ledger_url: Annotated[
        str | None,
        typer.Option("--ledger", help="Publish one verification record per cell to this ledger."),
    ] = None,
    repo: Annotated[
        str | None, typer.Option(help="This repository's OWNER/NAME in the records.")
    ] = None,
) -> None:
    """Run the suite once per (Core, Python) cell, each in its own environment, in parallel.

    Exit codes: 0 every cell as expected; 1 some cell failed or passed unexpectedly; 2 bad
    arguments, no cell ran, or a Python asked for is missing (without --allow-missing-python).
    """
    try:
        conf = settings.load_settings()
        cells = matrix.plan_cells(_split(core) or conf.core, _split(python) or conf.python)
    except ContractsError as exc:
        raise _fail(str(exc), 2) from exc
    started = time.perf_counter()
    results = _run_with_progress(conf, cells, out.resolve(), jobs)
    elapsed = time.perf_counter() - started
    report.write_reports(results, out, elapsed)
    ledger_url = ledger_url or os.environ.get("MDP_LEDGER") or None
    if ledger_url:
        _publish(_cell_records(conf, results, repo), ledger_url)
    Console().print(report.matrix_table(results))
    _console.print(f"{len(cells)} cells in {elapsed:.1f} s; reports in {out}/", highlight=False)
    raise typer.Exit(_matrix_exit_code(results, allow_missing_python))


def _cell_records(
    conf: settings.ContractsSettings, results: list[matrix.CellResult], repo: str | None
) -> list[VerificationRecord]:
    from ..contracts import record as rec

    name = _repo_name(conf, repo, "ledger")
    commit = rec.detect_commit(conf.root, os.environ)
    records = []
    for cell in results:
        expected = conf.expected_failure(cell.core, cell.python)
        result = rec.suite_result(
            cell.counts,
            cell.reason if cell.state not in ("passed", "unexpected-pass") else None,
            core_requested=cell.core,
            core_version=cell.core_installed,
            core_source="index",
            python=cell.python,
            setup_error=cell.reason if cell.counts.total == 0 else None,
            expected_failure=expected.reason if expected else None,
        )
        records.append(
            rec.build_record(
                result,
                repo=name,
                commit=commit,
                correlation_id=rec.env_correlation_id(),
                run_url=rec.detect_run_url(os.environ),
            )
        )
    return records


def _matrix_exit_code(results: list[matrix.CellResult], allow_missing_python: bool) -> int:
    skipped = sorted({r.python for r in results if r.state == "skipped"})
    if all(r.state == "skipped" for r in results):
        _console.print("[red]error:[/] no cell ran: every cell was skipped", highlight=False)
        return 2
    if skipped and not allow_missing_python:
        missing = ", ".join(skipped)
        _console.print(
            f"[red]error:[/] Python {missing} is not installed here; install it or pass "
            "--allow-missing-python",
            highlight=False,
        )
        return 2
    return 0 if matrix.matrix_ok(results) else 1


def _run_with_progress(
    conf: settings.ContractsSettings, cells: list[matrix.Cell], out: Path, jobs: int
) -> list[matrix.CellResult]:
    columns = (TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn())
    with Progress(*columns, console=_console, transient=True) as bar:
        tasks = {cell: bar.add_task(f"{cell.cell_id}: waiting", total=3) for cell in cells}
        steps = {"skipped": 3, "installing": 1, "testing": 2, "done": 3}

        def notify(cell: matrix.Cell, phase: str) -> None:
            bar.update(tasks[cell], completed=steps[phase], description=f"{cell.cell_id}: {phase}")

        return matrix.run_matrix(conf, cells, out, jobs=jobs, progress=notify)


@contracts_app.command("surface")
def surface_command(
    core: Annotated[
        str | None, typer.Option(help="A Core release to describe instead of the installed one.")
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Write the JSON here instead of stdout.")] = None,
) -> None:
    """Print the Core contract surface this project depends on, as JSON."""
    from ..contracts import surfaces

    try:
        data = surfaces.release_surface(core) if core else surfaces.installed_surface()
    except ContractsError as exc:
        raise _fail(str(exc)) from exc
    text = json.dumps(data, indent=2, sort_keys=True) + "\n"
    if out is None:
        sys.stdout.write(text)
    else:
        out.write_text(text, encoding="utf-8")


@contracts_app.command("diff")
def diff_command(
    before: Annotated[str, typer.Argument(help="Core version, 'latest' or a surface JSON file.")],
    after: Annotated[str, typer.Argument(help="Core version, 'latest' or a surface JSON file.")],
) -> None:
    """Say what changed in the Core surface this project uses between two releases."""
    from ..contracts import surfaces

    try:
        old, new = surfaces.load_surface(before), surfaces.load_surface(after)
    except ContractsError as exc:
        raise _fail(str(exc)) from exc
    title = f"Core {old.get('core_version', before)} -> {new.get('core_version', after)}"
    typer.echo(diff.render_changes(diff.diff_surfaces(old, new), title))


@contracts_app.command("dispatch")
def dispatch_command(
    repo: Annotated[list[str], typer.Option(help="OWNER/NAME; repeat or comma separate.")],
    core_ref: Annotated[str, typer.Option(help="The Core version or git ref to test.")],
    correlation_id: Annotated[str | None, typer.Option(help="Defaults to a new UUID.")] = None,
    event_type: Annotated[str, typer.Option(help="repository_dispatch type.")] = (
        dispatch.EVENT_TYPE
    ),
    api_url: Annotated[str, typer.Option(help="GitHub API base URL.")] = dispatch.DEFAULT_API_URL,
    dry_run: Annotated[bool, typer.Option(help="Validate and show; send nothing.")] = False,
) -> None:
    """Ask each downstream repository to run its contract suite against a Core release."""
    repos = _split(repo)
    payload = dispatch.build_payload(core_ref, correlation_id)
    try:
        for name in repos:
            dispatch.check_request(name, event_type, payload)
    except ContractsError as exc:
        raise _fail(str(exc), 2) from exc
    typer.echo(f"event {event_type}, payload {json.dumps(payload, sort_keys=True)}")
    if dry_run:
        for name in repos:
            typer.echo(f"{name}: would dispatch (dry run)")
        return
    token = os.environ.get("REPO_TOKEN") or os.environ.get("GITHUB_TOKEN") or ""
    try:
        client = dispatch.DispatchClient(token, api_url=api_url)
    except ContractsError as exc:
        raise _fail(str(exc), 2) from exc
    results = client.dispatch_all(repos, payload, event_type)
    for result in results:
        mark = "ok  " if result.ok else "FAIL"
        typer.echo(f"{mark} {result.message}")
    failed = sum(not result.ok for result in results)
    typer.echo(f"{len(results) - failed} dispatched, {failed} failed")
    raise typer.Exit(1 if failed else 0)


# The commands that read verification records live beside this module; importing it registers them.
from . import contracts_records  # noqa: E402, F401
