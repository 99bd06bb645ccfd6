"""What a valid contract-run request is: one set of rules for the dispatch workflow and the CLI.

Standard library only, and importing nothing from this package, so the workflow runs this very
file right after checkout, before anything is installed or reaches ``$GITHUB_OUTPUT`` or a shell:

    python3 packages/market-data-contracts/src/market_data_contracts/payload.py \\
        "$GITHUB_EVENT_PATH" --event-name "$GITHUB_EVENT_NAME" --github-output "$GITHUB_OUTPUT"

``mdp contracts dispatch`` applies ``validate`` to what it is about to send. A request is valid
when every value is a JSON string matching its pattern exactly (whole string, ASCII, no control
characters, no surrounding spaces), each key appears once, and no unknown key is present:

    core_ref         a release (``1.4.61``, ``1.5.0rc1``), ``latest``, or
                     ``git+https://<core-repository>@<ref>`` where ``core-repository`` is
                     ``[tool.mdp.contracts] core-repository`` (host/owner/name) and ``ref`` a
                     branch, tag or commit; any other URL or scheme is refused
    version          accepted in place of ``core_ref`` (never both)
    python_version   ``3.N`` (default ``3.11``)
    correlation_id   1-100 of ``A-Z a-z 0-9 . _ -`` (optional)
    core_repo        ``OWNER/NAME`` of the Core commit to report the verdict on (optional; with
                     ``core_sha``; when ``core-repository`` is configured it must be that one)
    core_sha         that commit, 40 lowercase hex digits (optional; with ``core_repo``)

Exit codes of the script: 0 valid (outputs written), 2 refused (one ``::error::`` line saying
which key and why, the value shown escaped), 1 the event file or pyproject cannot be read.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

DEFAULT_PYTHON = "3.11"
MAX_VALUE_CHARS = 300
ALLOWED_KEYS = frozenset(
    {"core_ref", "version", "python_version", "correlation_id", "core_repo", "core_sha"}
)
OUTPUT_KEYS = ("core_ref", "python_version", "correlation_id", "core_repo", "core_sha")

_VERSION = re.compile(r"\A[0-9]+(\.[0-9]+){0,3}((a|b|rc)[0-9]+)?(\.post[0-9]+)?(\.dev[0-9]+)?\Z")
_PYTHON = re.compile(r"\A3\.[0-9]{1,2}\Z")
_CORRELATION = re.compile(r"\A[A-Za-z0-9._-]{1,100}\Z")
_REPOSITORY = re.compile(r"\A[a-z0-9.-]+(/[A-Za-z0-9_.-]+){2}\Z")
_OWNER_NAME = re.compile(r"\A[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+\Z")
_SHA = re.compile(r"\A[0-9a-f]{40}\Z")
_GIT_REF = re.compile(r"\A[A-Za-z0-9_][A-Za-z0-9._/-]{0,99}\Z")
_PRINTABLE = re.compile(r"\A[\x21-\x7e]*\Z")  # visible ASCII: no space, control or non-ASCII


class PayloadError(ValueError):
    """A request value is refused; the message names the key and the rule."""


def validate(payload: Mapping[str, Any], core_repository: str) -> dict[str, str]:
    """Return the normalised request (``core_ref``, ``python_version``, ``correlation_id``).

    Raise ``PayloadError`` naming the first key that breaks a rule.
    """
    if not isinstance(payload, Mapping):
        raise PayloadError("the request is not a JSON object")
    unknown = sorted(str(key) for key in payload if key not in ALLOWED_KEYS)
    if unknown:
        raise PayloadError(f"unknown key(s) {', '.join(map(_show, unknown))}")
    if "core_ref" in payload and "version" in payload:
        raise PayloadError("give core_ref or version, not both")
    key = "core_ref" if "core_ref" in payload else "version"
    if key not in payload:
        raise PayloadError(
            "core_ref is required (a Core version such as 1.4.61, 'latest', "
            "or git+https://<core-repository>@REF)"
        )
    core_ref = check_core_ref(_string(payload, key), core_repository)
    python = _string(payload, "python_version") if "python_version" in payload else DEFAULT_PYTHON
    if not _PYTHON.match(python):
        raise PayloadError(f"python_version {_show(python)} is not a Python version such as 3.12")
    correlation = _string(payload, "correlation_id") if "correlation_id" in payload else ""
    if "correlation_id" in payload and not _CORRELATION.match(correlation):
        raise PayloadError(
            f"correlation_id {_show(correlation)} must be 1-100 letters, digits, '.', '_' or '-'"
        )
    core_repo, core_sha = _status_target(payload, core_repository)
    return {
        "core_ref": core_ref,
        "python_version": python,
        "correlation_id": correlation,
        "core_repo": core_repo,
        "core_sha": core_sha,
    }


def _status_target(payload: Mapping[str, Any], core_repository: str) -> tuple[str, str]:
    """Return (core_repo, core_sha): both given and valid, or both empty."""
    repo = _string(payload, "core_repo") if "core_repo" in payload else ""
    sha = _string(payload, "core_sha") if "core_sha" in payload else ""
    if bool(repo) != bool(sha):
        raise PayloadError("core_repo (OWNER/NAME) and core_sha (40 hex digits) go together")
    if repo and not _OWNER_NAME.match(repo):
        raise PayloadError(f"core_repo {_show(repo)} is not OWNER/NAME")
    if sha and not _SHA.match(sha):
        raise PayloadError(f"core_sha {_show(sha)} is not 40 lowercase hex digits")
    owner_name = core_repository.split("/", 1)[-1] if core_repository else ""
    if repo and owner_name and repo != owner_name:
        raise PayloadError(f"core_repo {_show(repo)} is not Core's repository {owner_name}")
    return repo, sha


def check_core_ref(value: str, core_repository: str) -> str:
    """Return ``value`` if it is a release, ``latest`` or a git ref of Core's repository."""
    if value == "latest" or _VERSION.match(value):
        return value
    if not _PRINTABLE.match(value):
        raise PayloadError(
            f"core_ref {_show(value)} contains spaces, control or non-ASCII characters"
        )
    if not value.startswith("git+https://"):
        raise PayloadError(
            f"core_ref {_show(value)} is not a Core version (1.4.61), 'latest' or "
            "git+https://<core-repository>@REF"
        )
    repository = check_repository(core_repository)
    location, at, ref = value.removeprefix("git+https://").rpartition("@")
    if not at or location.removesuffix(".git") != repository:
        raise PayloadError(
            f"core_ref {_show(value)} must be git+https://{repository}@REF: only Core's own "
            "repository may be installed"
        )
    if not _GIT_REF.match(ref) or ".." in ref or ref.endswith((".", "/", ".lock")):
        raise PayloadError(f"core_ref's ref {_show(ref)} is not a branch, tag or commit")
    return value


def check_repository(core_repository: str) -> str:
    """Return Core's repository (``github.com/OWNER/NAME``) or raise ``PayloadError``."""
    if not _REPOSITORY.match(core_repository or ""):
        raise PayloadError(
            "[tool.mdp.contracts] core-repository must be host/OWNER/NAME, e.g. "
            f"github.com/acme/market-data-core; got {_show(core_repository)}"
        )
    return core_repository


def _string(payload: Mapping[str, Any], key: str) -> str:
    value = payload[key]
    if not isinstance(value, str):
        raise PayloadError(f"{key} must be a JSON string, got {type(value).__name__}")
    if len(value) > MAX_VALUE_CHARS:
        raise PayloadError(f"{key} is longer than {MAX_VALUE_CHARS} characters")
    if value and not _PRINTABLE.match(value):
        raise PayloadError(f"{key} {_show(value)} contains spaces, control or non-ASCII characters")
    return value


def _show(value: str) -> str:
    """Return ``value`` escaped for one log line (never a raw newline or workflow command)."""
    text = ascii(value).replace("%", "%25")  # GitHub unescapes %0A in annotations
    return text if len(text) <= 80 else text[:79] + "..."


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise PayloadError(f"key {_show(key)} appears more than once")
        seen[key] = value
    return seen


def loads(text: str) -> Any:
    """Parse JSON, refusing an object with a repeated key anywhere."""
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates)
    except json.JSONDecodeError as exc:
        raise PayloadError(f"the request is not JSON: {exc}") from None


def request_from_event(event: Mapping[str, Any], event_name: str) -> Mapping[str, Any]:
    """Return the request inside a GitHub event: ``client_payload`` or ``inputs``."""
    if event_name == "repository_dispatch":
        request = event.get("client_payload")
    elif event_name == "workflow_dispatch":
        inputs = event.get("inputs") or {}
        request = {k: v for k, v in inputs.items() if v != "" or k == "core_ref"}
    else:
        raise PayloadError(f"event {_show(event_name)} carries no contract request")
    if not isinstance(request, Mapping):
        raise PayloadError("the event has no client_payload object")
    return request


def core_repository_from(pyproject: Path) -> str:
    """Return ``[tool.mdp.contracts] core-repository`` from a pyproject.toml."""
    data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    value = data.get("tool", {}).get("mdp", {}).get("contracts", {}).get("core-repository", "")
    return str(value)


def output_lines(values: Mapping[str, str]) -> str:
    """Return ``key=value`` lines for ``$GITHUB_OUTPUT`` (values are validated: one line each)."""
    lines = []
    for key in OUTPUT_KEYS:
        value = values[key]
        if "\n" in value or "\r" in value:  # validate() never lets one through; never trust it
            raise PayloadError(f"{key} spans lines")
        lines.append(f"{key}={value}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Validate the request in a GitHub event file; append the outputs when it is valid."""
    parser = argparse.ArgumentParser(description="Validate a contract-run request.")
    parser.add_argument("event_path", type=Path, help="the event JSON ($GITHUB_EVENT_PATH)")
    parser.add_argument("--event-name", default="repository_dispatch")
    parser.add_argument("--github-output", type=Path, help="append key=value lines here")
    parser.add_argument("--pyproject", type=Path, default=Path("pyproject.toml"))
    args = parser.parse_args(argv)
    try:
        repository = core_repository_from(args.pyproject)
        text = args.event_path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        print(f"::error::cannot read the request: {_show(str(exc))}")
        return 1
    try:
        values = validate(request_from_event(loads(text), args.event_name), repository)
        lines = output_lines(values)
    except PayloadError as exc:
        print(f"::error::refused: {exc}")
        return 2
    if args.github_output is not None:
        with args.github_output.open("a", encoding="utf-8") as out:
            out.write(lines)
    sys.stdout.write(lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
