"""The compatibility page: downstream repositories by Core versions, one coloured cell each.

``write_page(records, out_dir)`` writes ``out_dir/index.html``: a self-contained static page (inline
CSS, no script, no external resource) that GitHub Pages can serve as it is. A cell shows the
verdict of the repository's most recent commit that has a result for that Core (several Pythons
combined with ``verdict.combine``), links to its run, and expands (``<details>``) to show the
commit, each Python's verdict, the first failure and the notices. Every value is HTML-escaped.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path

from .record import VerificationRecord, now_iso
from .verdict import Verdict, combine

COLOURS = {
    Verdict.COMPATIBLE: "#2da44e",
    Verdict.COMPATIBLE_WITH_NOTICES: "#9bd17a",
    Verdict.INCOMPATIBLE: "#cf222e",
    Verdict.INCOMPLETE: "#bf8700",
    Verdict.ERROR: "#6e7781",
}
_CSS = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 2em; color: #1f2328; }
table { border-collapse: collapse; }
th, td { border: 1px solid #d0d7de; padding: 4px 8px; vertical-align: top; text-align: left; }
td.cell { min-width: 9em; }
td.cell summary { cursor: pointer; color: #fff; padding: 2px 6px; border-radius: 4px; }
td.cell summary a { color: #fff; }
td.empty { color: #6e7781; }
.legend span { display: inline-block; color: #fff; padding: 2px 6px; margin-right: 4px;
  border-radius: 4px; }
pre { white-space: pre-wrap; max-width: 40em; margin: 4px 0; }
"""


def version_key(version: str) -> tuple[tuple[int, int | str], ...]:
    """Sort Core versions numerically (``1.2.11`` after ``1.2.9``); words after numbers."""
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in version.split("."))


def render_page(records: Sequence[VerificationRecord], title: str = "Core compatibility") -> str:
    """Return the page's HTML for ``records``."""
    repos = sorted({r.repo for r in records})
    cores = sorted({r.core_version for r in records}, key=version_key)
    head = "".join(f"<th scope='col'>Core {_e(core)}</th>" for core in cores)
    rows = []
    for repo in repos:
        cells = "".join(_cell(repo, core, records) for core in cores)
        rows.append(f"<tr><th scope='row'>{_e(repo)}</th>{cells}</tr>")
    legend = "".join(
        f"<span style='background:{colour}'>{_e(v.label)}</span>" for v, colour in COLOURS.items()
    )
    body = (
        f"<h1>{_e(title)}</h1>"
        f"<p class='legend'>{legend}</p>"
        f"<table id='matrix'><thead><tr><th>repository</th>{head}</tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
        f"<p>{len(records)} record(s); written {_e(now_iso())}.</p>"
    )
    if not records:
        body += "<p id='empty'>The ledger holds no verification record yet.</p>"
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>{body}</body></html>\n"
    )


def write_page(records: Sequence[VerificationRecord], out_dir: Path) -> Path:
    """Write ``out_dir/index.html`` and return its path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "index.html"
    path.write_text(render_page(records), encoding="utf-8")
    return path


def _cell(repo: str, core: str, records: Sequence[VerificationRecord]) -> str:
    tested = [r for r in records if r.repo == repo and r.core_version == core]
    if not tested:
        return "<td class='empty' data-verdict='none'>no result</td>"
    latest = max(tested, key=lambda r: r.finished_at)
    at_commit = [r for r in tested if r.commit == latest.commit]
    verdict = combine(r.verdict for r in at_commit)
    shown = next(r for r in reversed(at_commit) if r.verdict is verdict)
    label = _e(verdict.label)
    url = shown.run_url if (shown.run_url or "").startswith(("https://", "http://")) else None
    link = f"<a href='{_e(url)}'>{label}</a>" if url else label
    details = [f"<div>commit <code>{_e(latest.commit[:12])}</code></div>"]
    details += [
        f"<div>Python {_e(r.python)}: {_e(r.verdict.label)} ({_e(r.finished_at)})</div>"
        for r in at_commit
    ]
    failure = shown.result.first_failure
    if failure is not None:
        text = f"{failure.test_id}: {failure.message}"
        details.append(f"<div class='failure'>first failure<pre>{_e(text)}</pre></div>")
    elif shown.result.reason and not verdict.passed:
        details.append(f"<div class='reason'>{_e(shown.result.reason)}</div>")
    notices = [n for r in at_commit for n in r.result.notices]
    if notices:
        items = "".join(f"<li>{_e(n.kind)}: {_e(n.message)}</li>" for n in notices)
        details.append(f"<div class='notices'>notices<ul>{items}</ul></div>")
    return (
        f"<td class='cell' data-repo='{_e(repo)}' data-core='{_e(core)}' "
        f"data-verdict='{verdict.value}'><details><summary style='background:"
        f"{COLOURS[verdict]}'>{link}</summary>{''.join(details)}</details></td>"
    )


def _e(text: str | None) -> str:
    return html.escape(text or "", quote=True)
