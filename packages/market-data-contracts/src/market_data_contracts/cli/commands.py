"""``mdp contracts``: the Core contract suite, the Core-version matrix, surface/diff and dispatch.

Core is imported only by the commands that inspect it (``surface`` without ``--core``), and the
contract machinery only by the command that runs, so ``mdp --help`` and the other commands start
fast.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape

from ..defaults import DISPATCH_EVENT_TYPE
from ..errors import ContractsError
from .common import API_URL_HELP, DEFAULT_OUT, console, fail, github_api_url, split

if TYPE_CHECKING:
    from .. import matrix, settings, verdict
    from ..junit import SuiteReport
    from ..record import VerificationRecord


def run_command(
    out: Annotated[
        Path,
        typer.Option(
            "--out", "-o", help="Folder for junit.xml, result.json and record.json.", metavar="DIR"
        ),
    ] = DEFAULT_OUT,
    ledger_url: Annotated[
        str | None,
        typer.Option(
            "--ledger",
            "-L",
            help="Publish the verification record: sqlite:///contracts.db or postgresql://..."
            " \\[default: $MDP_LEDGER]",
            metavar="URL",
        ),
    ] = None,
    repo: Annotated[
        str | None,
        typer.Option(
            "--repo",
            "-R",
            help="This repository's OWNER/NAME."
            " \\[default: repo in pyproject's tool.mdp.contracts, else the git remote origin]",
            metavar="OWNER/NAME",
        ),
    ] = None,
    correlation_id: Annotated[
        str | None,
        typer.Option(
            help="The Core release run's id. \\[default: $MDP_CORRELATION_ID]", metavar="ID"
        ),
    ] = None,
    core_ref: Annotated[
        str | None,
        typer.Option(
            help="What was asked for, recorded in the result, e.g. 1.4.61 or latest."
            " \\[default: $MDP_CORE_REQUESTED, else installed]",
            metavar="REF",
        ),
    ] = None,
    summary: Annotated[
        Path | None,
        typer.Option(
            help="Also append the verdict as Markdown here (e.g. $GITHUB_STEP_SUMMARY).",
            metavar="FILE",
        ),
    ] = None,
    pytest_args: Annotated[
        list[str] | None,
        typer.Argument(help="Extra pytest arguments (after --).", metavar="PYTEST_ARGS"),
    ] = None,
) -> None:
    """Run the contract suite against the installed Core; write JUnit, result.json, record.json.

    With --ledger the run's verification record is published there (see can-i-deploy).
    Exit codes (the verdict's): 0 compatible or compatible with notices; 1 incompatible;
    2 bad arguments; 3 incomplete (a service missing, tests skipped for another reason than
    a capability Core lacks); 4 error (the suite could not run). Example:
    mdp contracts run --out build/contracts -- -x
    """
    from .. import report, settings
    from ..junit import remove_report, write_verdict_properties

    try:
        conf = settings.load_settings()
    except ContractsError as exc:
        raise fail(str(exc), 2) from exc
    ledger_url = ledger_url or os.environ.get("MDP_LEDGER") or None
    if ledger_url:
        _repo_name(conf, repo, ledger_url)  # before the suite runs, not after
    out.mkdir(parents=True, exist_ok=True)
    junit = (out / "junit.xml").resolve()
    remove_report(junit)  # a report left by an earlier run must never be read as this one's
    started, started_at = time.perf_counter(), time.time()
    code, outcome = _run_suite(conf, junit, pytest_args or [], started_at)
    result = _suite_result(conf, outcome, started, core_ref)
    write_verdict_properties(junit, result)
    record = _run_record(conf, result, repo, correlation_id, started_at, ledger_url)
    data = {**result.to_json(), "pytest_exit_code": code}
    (out / "result.json").write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    _write_record(out, record, ledger_url)
    if summary is not None:
        with summary.open("a", encoding="utf-8") as handle:
            handle.write(report.result_markdown(result))
    _print_result(result)
    raise typer.Exit(result.exit_code)


def _run_suite(
    conf: settings.ContractsSettings, junit: Path, pytest_args: list[str], started_at: float
) -> tuple[int | None, tuple[SuiteReport, str | None]]:
    """Run pytest on the suite; return its exit code (None: not run or timed out) and outcome."""
    from .. import matrix, suite_env
    from ..junit import SuiteReport, judge_suite

    missing = suite_env.missing_requirements(conf.requirements)
    if missing:
        return None, (SuiteReport(), suite_env.missing_message(missing, conf.root, conf.extras))
    argv = [sys.executable, "-m", "pytest", conf.suite, "-m", "contracts", f"--junitxml={junit}"]
    argv += pytest_args
    try:
        code: int | None = subprocess.run(
            argv, cwd=conf.root, timeout=matrix.SUITE_TIMEOUT_S, check=False
        ).returncode
    except subprocess.TimeoutExpired:
        code = None
    return code, judge_suite(code, junit, started_at)


def _suite_result(
    conf: settings.ContractsSettings,
    outcome: tuple[SuiteReport, str | None],
    started: float,
    core_ref: str | None,
) -> verdict.ContractResult:
    from .. import matrix
    from .. import record as rec

    suite_report, suite_error = outcome
    result = matrix.contract_result(
        core=core_ref or os.environ.get("MDP_CORE_REQUESTED") or "installed",
        python=f"{sys.version_info[0]}.{sys.version_info[1]}",
        core_version=_installed_core(),
        report=suite_report,
        suite_error=suite_error,
        duration_s=time.perf_counter() - started,
    )
    result = dataclasses.replace(result, core_source=rec.installed_core_origin().source)
    if result.first_failure is None:
        return result
    return matrix.with_surface_diff(result, matrix.baseline_surface(conf), _installed_surface())


def _print_result(result: verdict.ContractResult) -> None:
    colour = "green" if result.verdict.passed else "red"
    line = f"[{colour}]{result.verdict.label}[/] (exit {result.exit_code})"
    # Never wrapped: the reason may be a command to copy (the suite's install command).
    console.print(line + (f": {escape(result.reason)}" if result.reason else ""), soft_wrap=True)
    first = result.first_failure
    if first is not None:
        console.print(f"  first failure: {escape(first.test_id)}: {escape(first.message)}")
        for diff_line in first.surface_diff:
            console.print(f"    {escape(diff_line)}", highlight=False)
    for item in result.notices:
        console.print(f"  notice ({item.kind}): {escape(item.message)}", highlight=False)


def _installed_surface() -> dict[str, object] | None:
    from .. import surfaces

    try:
        return surfaces.installed_surface()
    except Exception:  # a Core too broken to describe: the failure itself still stands
        return None


def _run_record(
    conf: settings.ContractsSettings,
    result: verdict.ContractResult,
    repo: str | None,
    correlation_id: str | None,
    started_at: float,
    ledger_url: str | None,
) -> VerificationRecord:
    """Return the verification record of this run's ``result`` with its provenance."""
    from .. import record as rec

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
    from .. import record as rec

    name = rec.detect_repo(conf.root, repo or conf.repo, os.environ)
    if name is None and ledger_url:
        raise fail(
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
    from ..ledger import open_ledger

    try:
        target = open_ledger(ledger_url)
        target.publish(records)
    except ContractsError as exc:
        raise fail(str(exc)) from exc
    console.print(f"{len(records)} record(s) published to {target.describe()}", highlight=False)


def _installed_core() -> str | None:
    import importlib.metadata

    try:
        return importlib.metadata.version("market-data-core")
    except importlib.metadata.PackageNotFoundError:
        return None


def matrix_command(
    core: Annotated[
        list[str] | None,
        typer.Option(
            "--core", "-C", help="Core releases, comma separated (or 'latest').", metavar="VERSIONS"
        ),
    ] = None,
    python: Annotated[
        list[str] | None,
        typer.Option("--python", "-p", help="Pythons, e.g. 3.11,3.12.", metavar="VERSIONS"),
    ] = None,
    jobs: Annotated[
        int, typer.Option(min=1, help="Cells run at once.", metavar="N")
    ] = os.cpu_count() or 2,
    out: Annotated[
        Path,
        typer.Option(
            "--out", "-o", help="Folder for matrix.json, matrix.md, JUnit.", metavar="DIR"
        ),
    ] = DEFAULT_OUT / "matrix",
    allow_missing_python: Annotated[
        bool, typer.Option(help="A Python not installed here skips its cells instead of failing.")
    ] = False,
    ledger_url: Annotated[
        str | None,
        typer.Option(
            "--ledger",
            "-L",
            help="Publish one verification record per cell to this ledger."
            " \\[default: $MDP_LEDGER]",
            metavar="URL",
        ),
    ] = None,
    repo: Annotated[
        str | None,
        typer.Option(
            "--repo",
            "-R",
            help="This repository's OWNER/NAME in the records.",
            metavar="OWNER/NAME",
        ),
    ] = None,
) -> None:
    """Run the suite once per (Core, Python) cell, each in its own environment, in parallel.

    Exit codes (the matrix verdict's, the worst cell not as expected): 0 compatible (with or
    without notices); 1 incompatible, or a cell declared to fail passed; 2 bad arguments;
    3 incomplete; 4 error (a release not on the index, a Python missing without
    --allow-missing-python, or no cell ran). Example:
    mdp contracts matrix --core 1.2.30,latest --python 3.11 --jobs 2
    """
    from .. import matrix, report, settings

    try:
        conf = settings.load_settings()
        cells = matrix.plan_cells(split(core) or conf.core, split(python) or conf.python)
    except ContractsError as exc:
        raise fail(str(exc), 2) from exc
    started = time.perf_counter()
    results = _run_with_progress(conf, cells, out.resolve(), jobs)
    elapsed = time.perf_counter() - started
    report.write_reports(results, out, elapsed)
    ledger_url = ledger_url or os.environ.get("MDP_LEDGER") or None
    if ledger_url:
        _publish(_cell_records(conf, results, repo), ledger_url)
    Console().print(report.matrix_table(results))
    console.print(f"{len(cells)} cells in {elapsed:.1f} s; reports in {out}/", highlight=False)
    raise typer.Exit(_matrix_exit_code(results, allow_missing_python))


def _cell_records(
    conf: settings.ContractsSettings, results: list[matrix.CellResult], repo: str | None
) -> list[VerificationRecord]:
    from .. import record as rec

    name = _repo_name(conf, repo, "ledger")
    commit = rec.detect_commit(conf.root, os.environ)
    records = []
    for cell in results:
        records.append(
            rec.build_record(
                cell.contract,
                repo=name,
                commit=commit,
                correlation_id=rec.env_correlation_id(),
                run_url=rec.detect_run_url(os.environ),
            )
        )
    return records


def _matrix_exit_code(results: list[matrix.CellResult], allow_missing_python: bool) -> int:
    from .. import matrix, verdict

    missing = [r for r in results if _python_missing(r)]
    if missing and allow_missing_python:
        results = [r for r in results if not _python_missing(r)]
        if not results:
            console.print("[red]error:[/] no cell ran: every Python asked for is missing")
            return verdict.Verdict.ERROR.exit_code
    elif missing:
        pythons = ", ".join(sorted({r.contract.python for r in missing}))
        console.print(
            f"[red]error:[/] Python {pythons} is not installed here; install it or pass "
            "--allow-missing-python",
            highlight=False,
        )
    return matrix.matrix_verdict(results).exit_code


def _python_missing(result: matrix.CellResult) -> bool:
    from .. import verdict

    reason = result.contract.reason or ""
    return result.verdict is verdict.Verdict.ERROR and reason.endswith(
        "is not installed on this machine"
    )


def _run_with_progress(
    conf: settings.ContractsSettings, cells: list[matrix.Cell], out: Path, jobs: int
) -> list[matrix.CellResult]:
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from .. import matrix

    columns = (TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        tasks = {cell: bar.add_task(f"{cell.cell_id}: waiting", total=3) for cell in cells}
        steps = {"installing": 1, "testing": 2, "done": 3}

        def notify(cell: matrix.Cell, phase: str) -> None:
            bar.update(tasks[cell], completed=steps[phase], description=f"{cell.cell_id}: {phase}")

        return matrix.run_matrix(conf, cells, out, jobs=jobs, progress=notify)


def surface_command(
    core: Annotated[
        str | None,
        typer.Option(
            "--core",
            "-C",
            help="A Core release to describe instead of the installed one.",
            metavar="VERSION",
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Write the JSON here instead of stdout.", metavar="FILE"),
    ] = None,
) -> None:
    """Print the Core contract surface this project depends on, as JSON."""
    from .. import surfaces

    try:
        data = surfaces.release_surface(core) if core else surfaces.installed_surface()
    except ContractsError as exc:
        raise fail(str(exc)) from exc
    text = json.dumps(data, indent=2, sort_keys=True) + "\n"
    if out is None:
        sys.stdout.write(text)
    else:
        out.write_text(text, encoding="utf-8")


def diff_command(
    before: Annotated[str, typer.Argument(help="Core version, 'latest' or a surface JSON file.")],
    after: Annotated[str, typer.Argument(help="Core version, 'latest' or a surface JSON file.")],
    as_json: Annotated[
        bool, typer.Option("--json", "-j", help="Print the classified changes as JSON.")
    ] = False,
) -> None:
    """Say what changed in the Core surface this project uses, each change classified.

    Every change is breaking, additive or cosmetic for this pipeline (docs/contracts.md says
    which is which). Exit 0 whatever changed; 1 when a surface cannot be built or read.
    Example: mdp contracts diff 1.2.30 1.2.31
    """
    from .. import compat, surfaces

    try:
        old, new = surfaces.load_surface(before), surfaces.load_surface(after)
    except ContractsError as exc:
        raise fail(str(exc)) from exc
    findings = compat.compare_surfaces(old, new)
    old_version, new_version = old.get("core_version", before), new.get("core_version", after)
    if as_json:
        data = {
            "before": old_version,
            "after": new_version,
            "worst": compat.worst(findings),
            "changes": [f.to_json() for f in findings],
        }
        typer.echo(json.dumps(data, indent=2))
        return
    typer.echo(compat.render_findings(findings, f"Core {old_version} -> {new_version}"))


def dispatch_command(
    repo: Annotated[
        list[str],
        typer.Option(
            "--repo", "-R", help="OWNER/NAME; repeat or comma separate.", metavar="OWNER/NAME"
        ),
    ],
    core_ref: Annotated[
        str,
        typer.Option(
            help="A Core release (1.4.61), 'latest', or git+https://<core-repository>@REF.",
            metavar="REF",
        ),
    ],
    correlation_id: Annotated[
        str | None,
        typer.Option(help="1-100 of A-Z a-z 0-9 . _ -. \\[default: a new UUID]", metavar="ID"),
    ] = None,
    python: Annotated[
        str | None,
        typer.Option(
            "--python", "-p", help="Python the suite runs on, e.g. 3.12.", metavar="VERSION"
        ),
    ] = None,
    core_repo: Annotated[
        str | None,
        typer.Option(
            help="OWNER/NAME of the Core commit the verdict is reported on (with --core-sha).",
            metavar="OWNER/NAME",
        ),
    ] = None,
    core_sha: Annotated[
        str | None,
        typer.Option(
            help="That Core commit: 40 lowercase hex digits (with --core-repo).", metavar="SHA"
        ),
    ] = None,
    event_type: Annotated[str, typer.Option(help="repository_dispatch type.", metavar="TYPE")] = (
        DISPATCH_EVENT_TYPE
    ),
    api_url: Annotated[str | None, typer.Option(help=API_URL_HELP, metavar="URL")] = None,
    dry_run: Annotated[bool, typer.Option(help="Validate and show; send nothing.")] = False,
) -> None:
    """Ask each downstream repository to run its contract suite against a Core release.

    The payload is checked with the same rules the receiving workflow applies
    (contracts/payload.py) before anything is sent; a refused value exits 2. Example:
    mdp contracts dispatch --repo acme/pipeline --core-ref 1.4.61 --python 3.12 --dry-run

    --core-repo and --core-sha (both or neither) name the Core commit the receiving run reports
    its verdict on. Example:
    mdp contracts dispatch --repo acme/pipeline --core-ref 1.4.61 --core-repo acme/core
    --core-sha 0123456789abcdef0123456789abcdef01234567 --dry-run
    """
    from .. import dispatch, settings
    from .. import payload as payload_rules

    repos = split(repo)
    extra = {"python_version": python} if python is not None else {}
    # Sent exactly as given (an empty value too): the payload rules decide, as the workflow does.
    extra.update({"core_repo": core_repo} if core_repo is not None else {})
    extra.update({"core_sha": core_sha} if core_sha is not None else {})
    request = dispatch.build_payload(core_ref, correlation_id, **extra)
    try:
        conf = settings.load_settings()
        payload_rules.validate(request, conf.core_repository)
        for name in repos:
            dispatch.check_request(name, event_type, request)
    except (ContractsError, payload_rules.PayloadError) as exc:
        raise fail(str(exc), 2) from exc
    typer.echo(f"event {event_type}, payload {json.dumps(request, sort_keys=True)}")
    if dry_run:
        for name in repos:
            typer.echo(f"{name}: would dispatch (dry run)")
        return
    token = os.environ.get("REPO_TOKEN") or os.environ.get("GITHUB_TOKEN") or ""
    try:
        client = dispatch.DispatchClient(token, api_url=github_api_url(api_url))
    except ContractsError as exc:
        raise fail(str(exc), 2) from exc
    results = client.dispatch_all(repos, request, event_type)
    for result in results:
        mark = "ok  " if result.ok else "FAIL"
        typer.echo(f"{mark} {result.message}")
    failed = sum(not result.ok for result in results)
    typer.echo(f"{len(results) - failed} dispatched, {failed} failed")
    raise typer.Exit(1 if failed else 0)
