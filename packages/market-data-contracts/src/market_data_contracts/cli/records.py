"""``mdp contracts can-i-deploy | results | report | page``: read verification records.

Records are written by ``mdp contracts run --ledger URL`` and ``matrix --ledger URL``; these
commands only read them (from the ledger, or ``record.json`` for ``report``).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from ..errors import ContractsError
from .common import API_URL_HELP, DEFAULT_OUT, fail, github_api_url, split

if TYPE_CHECKING:  # the contract machinery loads with the command that uses it
    from .. import gate, github, ledger
    from ..record import VerificationRecord

LEDGER_HELP = (
    "Ledger URL: sqlite:///path.db or postgresql://user@host/db."
    " \\[default: $MDP_LEDGER, else sqlite:///contracts.db]"
)
LAST_RUN_FILE = DEFAULT_OUT / "last-run"  # where `run` notes its --out for `report`
_ANSWER_STYLE = {"yes": "green", "no": "red", "unknown": "yellow"}


def _ledger(url: str | None) -> ledger.Ledger:
    from .. import ledger

    try:
        return ledger.open_ledger(url or os.environ.get("MDP_LEDGER"))
    except ContractsError as exc:
        raise fail(str(exc), 2) from exc


def _required_repos(repos: list[str] | None) -> list[str]:
    given = split(repos)
    if given:
        return given
    from .. import settings

    try:
        return list(settings.load_settings().downstream)
    except ContractsError as exc:
        raise fail(str(exc), 2) from exc


def can_i_deploy_command(
    core: Annotated[
        str,
        typer.Option(
            "--core", "-C", help="The Core version to ask about, e.g. 1.5.0.", metavar="VERSION"
        ),
    ],
    repo: Annotated[
        list[str] | None,
        typer.Option(
            "--repo",
            "-R",
            help="Required downstream OWNER/NAME, repeatable"
            " \\[default: downstream in pyproject's tool.mdp.contracts]",
            metavar="OWNER/NAME",
        ),
    ] = None,
    ledger_url: Annotated[
        str | None, typer.Option("--ledger", "-L", help=LEDGER_HELP, metavar="URL")
    ] = None,
    json_output: Annotated[
        bool, typer.Option("--json", "-j", help="Print the answer as JSON.")
    ] = False,
) -> None:
    """Say whether a Core version fits every required downstream: exit 0 yes, 1 no, 2 unknown.

    Each repository is judged at its latest recorded commit. A --core that is not a release
    version, or a ledger that does not exist or cannot be read, is one line and exit 2 (the
    ledger is only read: nothing is created). Example:
    mdp contracts can-i-deploy --core 1.5.0 --repo acme/pipeline --ledger sqlite:///contracts.db
    """
    from .. import gate, ledger

    try:
        gate.check_core_version(core)
    except ContractsError as exc:
        raise fail(str(exc), 2) from exc
    required = _required_repos(repo)
    if not required:
        raise fail("no required downstream: pass --repo or set [tool.mdp.contracts] downstream", 2)
    try:
        records = _ledger(ledger_url).records(ledger.RecordFilter(repos=tuple(required)))
    except ContractsError as exc:
        raise fail(str(exc), 2) from exc
    decision = gate.can_i_deploy(core, required, records)
    if json_output:
        sys.stdout.write(json.dumps(decision.to_json(), indent=2) + "\n")
    else:
        _print_decision(decision)
    raise typer.Exit(decision.answer.exit_code)


def _print_decision(decision: gate.Decision) -> None:
    from .. import gate

    table = Table(title=f"can I deploy Core {decision.core}?")
    for column in ("repository", "answer", "commit", "verdict", "detail"):
        table.add_column(column, overflow="fold")
    for row in decision.repos:
        style = _ANSWER_STYLE[row.answer.value]
        table.add_row(
            row.repo,
            f"[{style}]{row.answer.value}[/]",
            (row.commit or "-")[:12],
            row.verdict.label if row.verdict else "-",
            row.detail,
        )
    out = Console(highlight=False)
    out.print(table)
    style = _ANSWER_STYLE[decision.answer.value]
    out.print(f"[{style}]{decision.answer.value}[/]: Core {decision.core} ", end="")
    names = {
        "no": [r.repo for r in decision.repos if r.answer is gate.Answer.NO],
        "unknown": [r.repo for r in decision.repos if r.answer is gate.Answer.UNKNOWN],
    }
    if decision.answer is gate.Answer.YES:
        out.print("fits every required downstream")
    elif decision.answer is gate.Answer.NO:
        out.print(f"breaks {', '.join(names['no'])}")
    else:
        out.print(f"has no usable result for {', '.join(names['unknown'])}")


def results_command(
    ledger_url: Annotated[
        str | None, typer.Option("--ledger", "-L", help=LEDGER_HELP, metavar="URL")
    ] = None,
    core: Annotated[
        str | None, typer.Option("--core", "-C", help="Only this Core version.", metavar="VERSION")
    ] = None,
    repo: Annotated[
        list[str] | None,
        typer.Option("--repo", "-R", help="Only these OWNER/NAME.", metavar="OWNER/NAME"),
    ] = None,
    json_output: Annotated[
        bool, typer.Option("--json", "-j", help="Print the records as JSON.")
    ] = False,
) -> None:
    """List verification records, oldest first. Example: mdp contracts results --core 1.4.61

    A ledger that does not exist or cannot be read is one line and exit 2.
    """
    from .. import gate, ledger

    try:
        if core is not None:
            gate.check_core_version(core)
        where = ledger.RecordFilter(core=core, repos=tuple(split(repo)))
        records = _ledger(ledger_url).records(where)
    except ContractsError as exc:
        raise fail(str(exc), 2) from exc
    if json_output:
        sys.stdout.write(json.dumps([r.to_json() for r in records], indent=2) + "\n")
        return
    table = Table(title=f"{len(records)} verification record(s)")
    for column in (
        "finished",
        "repository",
        "commit",
        "Core",
        "Python",
        "verdict",
        "first failure",
    ):
        table.add_column(column, overflow="fold")
    for r in records:
        failure = r.result.first_failure
        table.add_row(
            r.finished_at,
            r.repo,
            r.commit[:12],
            r.core_version,
            r.python,
            r.verdict.label,
            failure.test_id if failure else (r.result.reason or "") if not r.verdict.passed else "",
        )
    Console(highlight=False).print(table)


def report_command(
    core_repo: Annotated[
        str, typer.Option(help="Core's OWNER/NAME, where the status goes.", metavar="OWNER/NAME")
    ],
    sha: Annotated[str, typer.Option(help="Core's release commit SHA.", metavar="SHA")],
    from_dir: Annotated[
        Path | None,
        typer.Option(
            "--from", help="Folder of record.json. \\[default: the last run's --out]", metavar="DIR"
        ),
    ] = None,
    api_url: Annotated[str | None, typer.Option(help=API_URL_HELP, metavar="URL")] = None,
    missing_as_error: Annotated[
        bool,
        typer.Option(
            help="Without a record (the run's set-up failed), post an error status for this "
            "repository instead of failing, so Core's gate does not wait for nothing."
        ),
    ] = False,
) -> None:
    """Post the last run's verdict as a commit status on Core's commit (token: REPO_TOKEN).

    Context contracts/OWNER/REPO; success, failure or error; the run as target URL. Example:
    mdp contracts report --core-repo acme/market-data-core --sha 3f2a9c1 --from build/contracts
    """
    from .. import github

    folder = from_dir or _last_run_dir()
    try:
        if missing_as_error and not (folder / "record.json").exists():
            status = _missing_status()
        else:
            status = github.status_for(load_record(folder))
        token = os.environ.get("REPO_TOKEN") or os.environ.get("GITHUB_TOKEN") or ""
        client = github.GitHubClient(token, api_url=github_api_url(api_url))
    except ContractsError as exc:
        raise fail(str(exc), 2) from exc
    try:
        attempts = github.post_status(client, core_repo, sha, status)
    except github.GitHubError as exc:
        raise fail(str(exc), 1) from exc
    except ContractsError as exc:
        raise fail(str(exc), 2) from exc
    typer.echo(
        f"{core_repo}@{sha[:12]}: {status.context} = {status.state} ({status.description}); "
        f"{attempts} attempt(s)"
    )


def _missing_status() -> github.CommitStatus:
    from .. import github, settings
    from .. import record as rec

    conf = settings.load_settings()
    repo = rec.detect_repo(conf.root, conf.repo, os.environ)
    if repo is None:
        raise ContractsError("cannot tell which repository this is: set [tool.mdp.contracts] repo")
    return github.missing_status(repo, rec.detect_run_url(os.environ), rec.env_correlation_id())


def _last_run_dir() -> Path:
    try:
        return Path(LAST_RUN_FILE.read_text(encoding="utf-8").strip())
    except OSError:
        return DEFAULT_OUT


def load_record(folder: Path) -> VerificationRecord:
    """Read ``folder/record.json`` (written by ``mdp contracts run``)."""
    from ..record import VerificationRecord

    path = folder / "record.json"
    try:
        return VerificationRecord.from_json(json.loads(path.read_text(encoding="utf-8")))
    except OSError as exc:
        raise ContractsError(
            f"{path}: no record ({exc.strerror or exc}); run `mdp contracts run --out {folder}`"
        ) from None
    except (ValueError, KeyError, TypeError) as exc:
        raise ContractsError(f"{path}: not a verification record: {exc}") from None


def page_command(
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for index.html.", metavar="DIR")],
    ledger_url: Annotated[
        str | None, typer.Option("--ledger", "-L", help=LEDGER_HELP, metavar="URL")
    ] = None,
) -> None:
    """Write the compatibility page (repositories by Core versions) as DIR/index.html.

    Example: mdp contracts page --ledger postgresql://ci@db/contracts --out site
    """
    from .. import page

    try:
        records = _ledger(ledger_url).records()
    except ContractsError as exc:
        raise fail(str(exc), 2) from exc
    path = page.write_page(records, out)
    typer.echo(f"{path}: {len(records)} record(s)")


def rollup_command(
    folders: Annotated[
        list[Path],
        typer.Argument(
            help="Folders searched for record.json (e.g. downloaded artifacts).", metavar="DIR..."
        ),
    ],
    markdown: Annotated[
        Path | None,
        typer.Option(
            help="Also write the table as Markdown here (a step summary).", metavar="FILE"
        ),
    ] = None,
    ledger_url: Annotated[
        str | None,
        typer.Option("--ledger", "-L", help="Also publish every record found here.", metavar="URL"),
    ] = None,
) -> None:
    """Roll many runs' records into one table, honouring expected-failures in tool.mdp.contracts.

    Exit 0 when every cell ended as expected (passed, or a declared expected failure), 1
    otherwise, 2 when no record was found. Example (the matrix workflow's last job):
    mdp contracts rollup artifacts/ --markdown "$GITHUB_STEP_SUMMARY"
    """
    from .. import rollup, settings

    try:
        conf = settings.load_settings()
        records = rollup.find_records(folders)
    except ContractsError as exc:
        raise fail(str(exc), 2) from exc
    if not records:
        raise fail(f"no record.json under {', '.join(map(str, folders))}", 2)
    cells = rollup.classify(records, conf)
    text = rollup.markdown(cells)
    typer.echo(text)
    if markdown is not None:
        with markdown.open("a", encoding="utf-8") as handle:
            handle.write(text + "\n")
    if ledger_url:
        try:
            _ledger(ledger_url).publish(records)
        except ContractsError as exc:
            raise fail(str(exc)) from exc
    raise typer.Exit(0 if all(cell.as_expected for cell in cells) else 1)
