"""Run one job of a GitHub Actions workflow here, as GitHub would run its ``run:`` steps.

The job's steps run in order with ``bash --noprofile --norc -e`` in a workspace that is a fresh
``git clone`` of the repository (``fresh_clone``), each with what GitHub gives a step: the files
``GITHUB_OUTPUT``, ``GITHUB_ENV``, ``GITHUB_PATH`` and ``GITHUB_STEP_SUMMARY`` (read back after the
step: outputs, environment and path for the next steps, the job's summary), the event file at
``GITHUB_EVENT_PATH``, ``RUNNER_TEMP``, the ``github.*`` variables, the job's ``env`` and then the
step's own. In those, in ``with:`` and in the ``run:`` script itself, ``${{ inputs.* }}``,
``${{ steps.ID.outputs.* }}``, ``${{ env.* }}``, ``${{ secrets.* }}`` and ``${{ github.* }}`` are
evaluated. ``if:`` conditions are honoured (a
condition without a status function means ``success() && (...)``; ``always()``, ``failure()``,
``success()`` and ``cancelled()`` are known).

``uses:`` steps are emulated only by the explicit table ``EMULATED`` (checkout: the workspace is
already the fresh clone; setup-python: a private virtual environment of the local interpreter
of that version; setup-uv: the local uv; upload-artifact: a copy into ``artifacts``). Any other
action, an unknown function or context in an expression, or a ``shell`` other than bash is a
``WorkflowError``: what is not emulated is refused, never skipped. Job ``services`` must already
listen on 127.0.0.1 at their mapped ports (the machine's own services stand in for containers).

    python tests/support/workflow_runner.py .github/workflows/_contracts_reusable.yml contracts \\
        --input core_ref=latest
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

# Variables of the calling process that must not reach a step: a runner starts clean.
_NOT_INHERITED = ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "CONDA_PREFIX")
_STATUS_FUNCTIONS = ("always", "success", "failure", "cancelled")
_EXPRESSION = re.compile(r"\$\{\{(.*?)\}\}", re.DOTALL)


class WorkflowError(Exception):
    """The workflow asks for something this runner does not emulate, or is malformed."""


# ---------------------------------------------------------------------------------------------
# Expressions: literals, context paths, status functions, !, ==, !=, &&, || and parentheses.
# ---------------------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"\s*(?:(?P<string>'(?:[^']|'')*')|(?P<number>-?\d+(?:\.\d+)?)"
    r"|(?P<op>&&|\|\||==|!=|!|\(|\))|(?P<name>[A-Za-z_][A-Za-z0-9_.-]*))"
)


def _tokens(text: str) -> list[tuple[str, str]]:
    found, pos = [], 0
    text = text.strip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            raise WorkflowError(f"cannot read expression {text!r} at {text[pos:]!r}")
        kind = match.lastgroup or ""
        found.append((kind, match.group(kind)))
        pos = match.end()
    return found


@dataclass
class _Parser:
    tokens: list[tuple[str, str]]
    lookup: Callable[[str], Any]
    status: Callable[[str], bool]
    pos: int = 0

    def parse(self) -> Any:
        value = self._or()
        if self.pos != len(self.tokens):
            raise WorkflowError(f"unexpected {self.tokens[self.pos][1]!r} in expression")
        return value

    def _peek(self) -> str | None:
        return self.tokens[self.pos][1] if self.pos < len(self.tokens) else None

    def _take(self) -> tuple[str, str]:
        if self.pos >= len(self.tokens):
            raise WorkflowError("expression ends too early")
        self.pos += 1
        return self.tokens[self.pos - 1]

    def _or(self) -> Any:
        value = self._and()
        while self._peek() == "||":
            self._take()
            right = self._and()
            value = value if truthy(value) else right
        return value

    def _and(self) -> Any:
        value = self._unary()
        while self._peek() == "&&":
            self._take()
            right = self._unary()
            value = right if truthy(value) else value
        return value

    def _unary(self) -> Any:
        if self._peek() == "!":
            self._take()
            return not truthy(self._unary())
        left = self._primary()
        if self._peek() in ("==", "!="):
            negate = self._take()[1] == "!="
            return _equal(left, self._primary()) != negate
        return left

    def _primary(self) -> Any:
        kind, text = self._take()
        if text == "(":
            value = self._or()
            if self._take()[1] != ")":
                raise WorkflowError("missing ')' in expression")
            return value
        if kind == "string":
            return text[1:-1].replace("''", "'")
        if kind == "number":
            return float(text)
        if kind != "name":
            raise WorkflowError(f"unexpected {text!r} in expression")
        if text in ("true", "false", "null"):
            return {"true": True, "false": False, "null": None}[text]
        if self._peek() == "(":
            self._take()
            if self._take()[1] != ")" or text not in _STATUS_FUNCTIONS:
                raise WorkflowError(f"function {text}() is not emulated")
            return self.status(text)
        return self.lookup(text)


def truthy(value: Any) -> bool:
    """Return GitHub's truthiness: '', 0, null and false are false."""
    return value not in ("", 0, None, False)


def _equal(left: Any, right: Any) -> bool:
    if isinstance(left, str) and isinstance(right, str):
        return left.casefold() == right.casefold()  # GitHub compares strings ignoring case
    return bool(left == right)


# ---------------------------------------------------------------------------------------------
# The job
# ---------------------------------------------------------------------------------------------


@dataclass
class StepResult:
    """What one step did."""

    name: str
    outcome: str  # success, failure or skipped
    outputs: dict[str, str] = field(default_factory=dict)
    log: str = ""
    seconds: float = 0.0


@dataclass
class JobResult:
    """What the job did: its steps, outputs, summary, and where its artifacts went."""

    steps: list[StepResult]
    outputs: dict[str, str]
    summary: str
    artifacts: Path

    @property
    def succeeded(self) -> bool:
        """Return whether no step failed."""
        return all(step.outcome != "failure" for step in self.steps)

    @property
    def log(self) -> str:
        """Return every step's log, headed by its name and outcome."""
        return "\n".join(
            f"=== {s.name}: {s.outcome} ({s.seconds:.1f} s)\n{s.log}" for s in self.steps
        )

    def step(self, name: str) -> StepResult:
        """Return the step called ``name``."""
        return next(s for s in self.steps if s.name == name)


@dataclass
class Runner:
    """Run one job of ``workflow`` in ``workspace`` (a fresh clone: see ``fresh_clone``)."""

    workflow: Path
    job: str
    workspace: Path
    inputs: dict[str, str] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)
    github: dict[str, str] = field(default_factory=dict)  # GITHUB_* overrides, e.g. API URL
    event_name: str = "workflow_dispatch"
    event: dict[str, Any] = field(default_factory=dict)
    pythons: dict[str, str] = field(default_factory=dict)  # setup-python version -> interpreter
    temp: Path | None = None  # RUNNER_TEMP (artifacts go below it); default: a new temp folder

    def __post_init__(self) -> None:
        data = yaml.safe_load(self.workflow.read_text(encoding="utf-8"))
        data["on"] = data.pop(True, data.get("on"))  # YAML 1.1 reads the key `on` as True
        if self.job not in data.get("jobs", {}):
            raise WorkflowError(f"{self.workflow.name} has no job {self.job!r}")
        self._spec: dict[str, Any] = data["jobs"][self.job]
        self._inputs = _with_defaults(data["on"], self.inputs)
        self.workdir = self.temp or Path(tempfile.mkdtemp(prefix="runner-temp-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.artifacts = self.workdir / "artifacts"
        self._steps: dict[str, dict[str, str]] = {}
        self._env: dict[str, str] = {}  # the job's env plus what GITHUB_ENV added
        self.path_added: list[str] = []  # GITHUB_PATH (and setup-*) additions, newest first
        self._failed = False

    def run(self) -> JobResult:
        """Run every step; return what happened (a failing step fails the job, as on GitHub)."""
        _check_services(self._spec.get("services", {}))
        self._github_vars = self._github_variables()
        self._env = {k: self._interpolate(str(v)) for k, v in self._spec.get("env", {}).items()}
        deadline = time.monotonic() + 60 * float(self._spec.get("timeout-minutes", 360))
        results, summary = [], []
        for index, step in enumerate(self._spec.get("steps", [])):
            result, text = self._run_step(index, step, deadline)
            results.append(result)
            summary.append(text)
        outputs = {k: self._interpolate(str(v)) for k, v in self._spec.get("outputs", {}).items()}
        return JobResult(results, outputs, "".join(summary), self.artifacts)

    def _run_step(
        self, index: int, step: dict[str, Any], deadline: float
    ) -> tuple[StepResult, str]:
        name = str(step.get("name") or step.get("uses") or f"step {index}")
        if not self._should_run(step.get("if")):
            return StepResult(name, "skipped"), ""
        files = {k: self.workdir / f"{k.lower()}-{index}" for k in _STEP_FILES}
        for path in files.values():
            path.write_text("", encoding="utf-8")
        env = self._step_env(step, files)
        started = time.monotonic()
        try:
            if "uses" in step:
                log, ok = self._uses(step, env), True
            else:
                log, ok = self._shell(index, step, env, deadline)
        except WorkflowError as exc:
            raise WorkflowError(f"step {name!r}: {exc}") from None
        outputs = _read_pairs(files["GITHUB_OUTPUT"])
        if step.get("id"):
            self._steps[str(step["id"])] = outputs
        self._env.update(_read_pairs(files["GITHUB_ENV"]))
        added = files["GITHUB_PATH"].read_text(encoding="utf-8").split("\n")
        self.path_added = [line for line in reversed(added) if line.strip()] + self.path_added
        if not ok and not step.get("continue-on-error"):
            self._failed = True
        summary = files["GITHUB_STEP_SUMMARY"].read_text(encoding="utf-8")
        outcome = "success" if ok else "failure"
        return StepResult(name, outcome, outputs, log, time.monotonic() - started), summary

    def _should_run(self, condition: Any) -> bool:
        text = "success()" if condition is None else str(condition).strip()
        match = re.fullmatch(r"\$\{\{(.*)\}\}", text, re.DOTALL)
        text = match.group(1) if match else text
        if not any(re.search(rf"\b{f}\(", text) for f in _STATUS_FUNCTIONS):
            text = f"success() && ({text})"
        return truthy(self._evaluate(text))

    def _shell(
        self, index: int, step: dict[str, Any], env: dict[str, str], deadline: float
    ) -> tuple[str, bool]:
        shell = step.get("shell", self._spec.get("defaults", {}).get("run", {}).get("shell"))
        argv = ["bash", "--noprofile", "--norc", "-e"]  # GitHub's default for run: on Linux
        if shell == "bash":
            argv = ["bash", "--noprofile", "--norc", "-eo", "pipefail"]
        elif shell is not None:
            raise WorkflowError(f"shell {shell!r} is not emulated")
        script = self.workdir / f"step-{index}.sh"
        script.write_text(self._interpolate(str(step["run"])), encoding="utf-8")  # as GitHub does
        cwd = self.workspace / str(step.get("working-directory", "."))
        try:
            done = subprocess.run(
                [*argv, str(script)],
                cwd=cwd,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                timeout=max(1.0, deadline - time.monotonic()),
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            return f"{exc.output or ''}\nthe job ran past its timeout-minutes", False
        return done.stdout, done.returncode == 0

    def _uses(self, step: dict[str, Any], env: dict[str, str]) -> str:
        action = str(step["uses"]).split("@", 1)[0]
        emulate = EMULATED.get(action)
        if emulate is None:
            raise WorkflowError(f"uses: {step['uses']} is not emulated (known: {sorted(EMULATED)})")
        given = {k: self._interpolate(str(v)) for k, v in (step.get("with") or {}).items()}
        return emulate(self, given, env)

    def _step_env(self, step: dict[str, Any], files: dict[str, Path]) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in _NOT_INHERITED}
        env = {k: v for k, v in env.items() if not k.startswith(("GITHUB_", "RUNNER_", "MDP_"))}
        outer = env.get("PATH", os.defpath).split(os.pathsep)
        # The caller's own virtual environment is not on a runner's PATH.
        outer = [p for p in outer if not Path(p, "activate").is_file()]
        env["PATH"] = os.pathsep.join([*self.path_added, *outer])
        env.update(self._github_vars)
        env.update({k: str(v) for k, v in files.items()})
        env.update(self._env)
        env.update({k: self._interpolate(str(v)) for k, v in (step.get("env") or {}).items()})
        return env

    def _github_variables(self) -> dict[str, str]:
        event_path = self.workdir / "event.json"
        event_path.write_text(json.dumps(self.event), encoding="utf-8")
        sha = _git(self.workspace, "rev-parse", "HEAD")
        values = {
            "CI": "true",
            "GITHUB_ACTIONS": "true",
            "GITHUB_WORKSPACE": str(self.workspace),
            "GITHUB_EVENT_PATH": str(event_path),
            "GITHUB_EVENT_NAME": self.event_name,
            "GITHUB_JOB": self.job,
            "GITHUB_SHA": sha,
            "GITHUB_REF": "refs/heads/main",
            "GITHUB_REPOSITORY": "owner/repository",
            "GITHUB_RUN_ID": str(uuid.uuid4().int % 10**10),
            "GITHUB_RUN_ATTEMPT": "1",
            "GITHUB_ACTOR": "runner",
            "GITHUB_SERVER_URL": "https://github.com",
            "GITHUB_API_URL": "https://api.github.com",
            "RUNNER_OS": "Linux",
            "RUNNER_TEMP": str(self.workdir),
        }
        values.update(self.github)
        return values

    # -- expressions ---------------------------------------------------------------------------

    def _interpolate(self, text: str) -> str:
        def one(match: re.Match[str]) -> str:
            value = self._evaluate(match.group(1))
            if isinstance(value, bool):
                return "true" if value else "false"
            return "" if value is None else str(value)

        return _EXPRESSION.sub(one, text)

    def _evaluate(self, text: str) -> Any:
        return _Parser(_tokens(text), self._lookup, self._status).parse()

    def _status(self, name: str) -> bool:
        return {"always": True, "success": not self._failed, "failure": self._failed}.get(
            name, False
        )

    def _lookup(self, path: str) -> Any:
        head, _, rest = path.partition(".")
        contexts: dict[str, Any] = {
            "inputs": self._inputs,
            "secrets": self.secrets,
            "env": self._env,
            "steps": {k: {"outputs": v} for k, v in self._steps.items()},
            "github": {
                **{k.removeprefix("GITHUB_").lower(): v for k, v in self._github_vars.items()},
                "event": self.event,
            },
            "runner": {"temp": str(self.workdir), "os": "Linux"},
        }
        if head not in contexts:
            raise WorkflowError(f"context {head!r} is not emulated (in {path!r})")
        value: Any = contexts[head]
        for part in rest.split(".") if rest else []:
            value = value.get(part) if isinstance(value, Mapping) else None
        return value


_STEP_FILES = ("GITHUB_OUTPUT", "GITHUB_ENV", "GITHUB_PATH", "GITHUB_STEP_SUMMARY")


def _with_defaults(on: Any, given: dict[str, str]) -> dict[str, Any]:
    declared: dict[str, Any] = {}
    triggers = on if isinstance(on, dict) else {}  # `on: push` declares no inputs
    for trigger in ("workflow_call", "workflow_dispatch"):
        declared.update((triggers.get(trigger) or {}).get("inputs") or {})
    unknown = set(given) - set(declared)
    if unknown:
        raise WorkflowError(f"inputs not declared by the workflow: {sorted(unknown)}")
    values: dict[str, Any] = {}
    for name, spec in declared.items():
        if name in given:
            values[name] = given[name]
        elif (spec or {}).get("required"):
            raise WorkflowError(f"required input {name!r} was not given")
        else:
            values[name] = (spec or {}).get("default", "")
    return values


def _read_pairs(path: Path) -> dict[str, str]:
    """Read ``NAME=value`` lines and ``NAME<<DELIMITER`` blocks (GITHUB_OUTPUT, GITHUB_ENV)."""
    pairs: dict[str, str] = {}
    lines = iter(path.read_text(encoding="utf-8").splitlines())
    for line in lines:
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            name, delimiter = line.split("<<", 1)
            block = []
            for inner in lines:
                if inner == delimiter:
                    break
                block.append(inner)
            else:
                raise WorkflowError(f"{path.name}: {name} has no closing {delimiter!r}")
            pairs[name] = "\n".join(block)
        elif "=" in line:
            name, value = line.split("=", 1)
            pairs[name] = value
        elif line.strip():
            raise WorkflowError(f"{path.name}: cannot read line {line!r}")
    return pairs


def _check_services(services: dict[str, Any]) -> None:
    for name, spec in services.items():
        for mapping in (spec or {}).get("ports", []):
            port = int(str(mapping).split(":", 1)[0])
            try:
                socket.create_connection(("127.0.0.1", port), 2).close()
            except OSError:
                raise WorkflowError(
                    f"service {name!r}: nothing listens on 127.0.0.1:{port}"
                ) from None


def _git(cwd: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True)
    return done.stdout.strip()


# ---------------------------------------------------------------------------------------------
# uses: the emulated actions
# ---------------------------------------------------------------------------------------------


def _checkout(runner: Runner, given: dict[str, str], env: dict[str, str]) -> str:
    if _git(runner.workspace, "rev-parse", "--is-inside-work-tree") != "true":
        raise WorkflowError(f"{runner.workspace} is not a git checkout")
    return f"checkout: the workspace is a fresh clone at {env['GITHUB_SHA'][:12]}"


def _setup_python(runner: Runner, given: dict[str, str], env: dict[str, str]) -> str:
    version = given.get("python-version", "")
    python = runner.pythons.get(version) or shutil.which(f"python{version}")
    if not version or python is None:
        raise WorkflowError(f"setup-python: no local interpreter for python-version {version!r}")
    # A private, writable interpreter with pip, as the runner's tool cache gives: what a step
    # installs with pip stays in it (uv seeds pip from its cache, much faster than ensurepip).
    home = runner.workdir / f"python-{version}"
    uv = Path(sys.executable).parent / "uv"
    make = [str(uv), "venv", "--quiet", "--seed", "--python", python, str(home)]
    if not uv.is_file():
        make = [python, "-m", "venv", str(home)]
    subprocess.run(make, check=True, capture_output=True)
    runner.path_added.insert(0, str(home / "bin"))
    return f"setup-python: {python} as {home / 'bin' / 'python'}"


def _setup_uv(runner: Runner, given: dict[str, str], env: dict[str, str]) -> str:
    uv = Path(sys.executable).parent / "uv"
    found = str(uv) if uv.is_file() else shutil.which("uv")
    if found is None:
        raise WorkflowError("setup-uv: uv is not installed here")
    runner.path_added.insert(0, str(Path(found).parent))
    return f"setup-uv: {found}"


def _upload_artifact(runner: Runner, given: dict[str, str], env: dict[str, str]) -> str:
    name = given.get("name") or "artifact"
    source = runner.workspace / given.get("path", "")
    target = runner.artifacts / name
    if target.exists():
        raise WorkflowError(f"upload-artifact: an artifact named {name!r} exists already")
    if not source.exists():
        if given.get("if-no-files-found", "warn") == "error":
            raise WorkflowError(f"upload-artifact: nothing at {source}")
        return f"upload-artifact: no files at {source} (warning)"
    if source.is_dir():
        shutil.copytree(source, target)
    else:
        target.mkdir(parents=True)
        shutil.copy2(source, target)
    return f"upload-artifact: {source} -> {target}"


Emulator = Callable[[Runner, dict[str, str], dict[str, str]], str]
EMULATED: dict[str, Emulator] = {
    "actions/checkout": _checkout,
    "actions/setup-python": _setup_python,
    "astral-sh/setup-uv": _setup_uv,
    "actions/upload-artifact": _upload_artifact,
}


# ---------------------------------------------------------------------------------------------
# The workspace
# ---------------------------------------------------------------------------------------------


def fresh_clone(source: Path, dest: Path) -> Path:
    """Clone ``source``'s current commit into ``dest``, plus its uncommitted changes.

    In CI the checkout is clean and this is a plain clone; on a developer's machine the edits not
    yet committed (tracked changes and new files git does not ignore) are carried over, so what
    runs is the working tree as a fresh checkout of it would be, without ignored files (.venv,
    build output).
    """
    sha = _git(source, "rev-parse", "HEAD")
    subprocess.run(["git", "clone", "--quiet", "--no-checkout", str(source), str(dest)], check=True)
    subprocess.run(["git", "checkout", "--quiet", "--detach", sha], cwd=dest, check=True)
    diff = subprocess.run(
        ["git", "diff", "--binary", "HEAD"], cwd=source, capture_output=True, check=True
    ).stdout
    if diff:
        subprocess.run(["git", "apply", "--whitespace=nowarn"], cwd=dest, input=diff, check=True)
    untracked = _git(source, "ls-files", "--others", "--exclude-standard", "-z")
    for rel in filter(None, untracked.split("\0")):
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source / rel, dest / rel)
    return dest


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workflow", type=Path)
    parser.add_argument("job")
    parser.add_argument("--input", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--secret", action="append", default=[], metavar="NAME=VALUE")
    args = parser.parse_args()
    root = Path(_git(Path.cwd(), "rev-parse", "--show-toplevel"))
    with tempfile.TemporaryDirectory(prefix="workflow-") as tmp:
        workspace = fresh_clone(root, Path(tmp) / "workspace")
        runner = Runner(
            workflow=args.workflow.resolve(),
            job=args.job,
            workspace=workspace,
            inputs=dict(item.split("=", 1) for item in args.input),
            secrets=dict(item.split("=", 1) for item in args.secret),
        )
        result = runner.run()
        print(result.log)
        print(result.summary)
        print(json.dumps({"succeeded": result.succeeded, "outputs": result.outputs}))
    return 0 if result.succeeded else 1


if __name__ == "__main__":
    sys.exit(main())
