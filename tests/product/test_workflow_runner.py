"""The local workflow runner itself: what it feeds each step, and what it refuses."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from workflow_runner import Runner, WorkflowError, fresh_clone

WORKFLOW = """
on:
  workflow_call:
    inputs:
      who: {type: string, required: true}
      extra: {type: string, default: "dflt"}
    secrets:
      TOKEN: {required: false}
jobs:
  one:
    runs-on: ubuntu-latest
    env:
      WHO: ${{ inputs.who }}
    outputs:
      greeting: ${{ steps.hello.outputs.text }}
    steps:
      - id: hello
        run: |
          echo "text=hello $WHO" >> "$GITHUB_OUTPUT"
          printf 'multi<<EOF\\nline 1\\nline 2\\nEOF\\n' >> "$GITHUB_OUTPUT"
          echo "FROM_ENV_FILE=set" >> "$GITHUB_ENV"
          tools="$RUNNER_TEMP/bin" && mkdir -p "$tools"
          printf '#!/bin/sh\\necho tool ran\\n' > "$tools/tool"
          chmod +x "$tools/tool" && echo "$tools" >> "$GITHUB_PATH"
          echo "## summary of $WHO" >> "$GITHUB_STEP_SUMMARY"
      - name: later
        env:
          GREETING: ${{ steps.hello.outputs.text }}
          EXTRA: ${{ inputs.extra }}
          SECRET: ${{ secrets.TOKEN }}
        run: |
          test "$GREETING" = "hello world" && test "$EXTRA" = dflt && test "$FROM_ENV_FILE" = set
          test "$SECRET" = s3cret && tool && jq -r .action "$GITHUB_EVENT_PATH" > action.txt
      - name: fails
        run: |
          false
          echo "bash -e stops at the first failing command" > not-reached.txt
      - name: skipped after a failure
        run: touch skipped.txt
      - name: runs after a failure
        if: failure() && inputs.who == 'WORLD'
        run: touch failure-seen.txt
      - name: always
        if: always()
        run: touch always.txt
"""


def _workspace(tmp_path: Path) -> Path:
    space = tmp_path / "space"
    space.mkdir()
    subprocess.run(["git", "init", "-q", str(space)], check=True)
    subprocess.run(
        [
            "git",
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "commit",
            "-q",
            "--allow-empty",
            "-m",
            "init",
        ],
        cwd=space,
        check=True,
    )
    return space


def _runner(tmp_path: Path, text: str, **inputs: str) -> Runner:
    workflow = tmp_path / "wf.yml"
    workflow.write_text(text, encoding="utf-8")
    return Runner(
        workflow=workflow,
        job="one",
        workspace=_workspace(tmp_path),
        inputs=inputs,
        secrets={"TOKEN": "s3cret"},
        event={"action": "core-release"},
        temp=tmp_path / "runner",
    )


def test_steps_get_outputs_env_path_summary_event_and_conditions(tmp_path: Path) -> None:
    result = _runner(tmp_path, WORKFLOW, who="world").run()
    space = tmp_path / "space"
    assert [s.outcome for s in result.steps] == [
        "success",
        "success",
        "failure",
        "skipped",
        "success",
        "success",
    ], result.log
    assert result.outputs == {"greeting": "hello world"}
    assert result.steps[0].outputs["multi"] == "line 1\nline 2"
    assert "tool ran" in result.steps[1].log
    assert (space / "action.txt").read_text().strip() == "core-release"
    assert not (space / "not-reached.txt").exists() and not (space / "skipped.txt").exists()
    assert (space / "failure-seen.txt").exists() and (space / "always.txt").exists()
    assert result.summary == "## summary of world\n" and not result.succeeded


@pytest.mark.parametrize(
    ("step", "message"),
    [
        ("uses: actions/cache@v4", "not emulated"),
        ("run: echo ${{ matrix.nope }}", "context 'matrix' is not emulated"),
        ("if: hashFiles('x') != ''\n        run: 'true'", "hashFiles() is not emulated"),
        ("shell: pwsh\n        run: 'true'", "shell 'pwsh' is not emulated"),
    ],
)
def test_what_is_not_emulated_is_refused(tmp_path: Path, step: str, message: str) -> None:
    text = f"on: push\njobs:\n  one:\n    steps:\n      - {step}\n"
    with pytest.raises(WorkflowError, match=message.replace("(", r"\(").replace(")", r"\)")):
        _runner(tmp_path, text).run()


def test_a_missing_required_input_is_refused(tmp_path: Path) -> None:
    with pytest.raises(WorkflowError, match="required input 'who'"):
        _runner(tmp_path, WORKFLOW).run()


def test_fresh_clone_carries_uncommitted_work_but_not_ignored_files(tmp_path: Path) -> None:
    source = _workspace(tmp_path)
    (source / ".gitignore").write_text("ignored/\n")
    (source / "tracked.txt").write_text("committed\n")
    subprocess.run(["git", "add", "."], cwd=source, check=True)
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "two"],
        cwd=source,
        check=True,
    )
    (source / "tracked.txt").write_text("edited\n")
    (source / "new.txt").write_text("new\n")
    (source / "ignored").mkdir()
    (source / "ignored" / "big.bin").write_text("x")
    clone = fresh_clone(source, tmp_path / "clone")
    assert (clone / "tracked.txt").read_text() == "edited\n"
    assert (clone / "new.txt").read_text() == "new\n"
    assert not (clone / "ignored").exists()
    assert json.dumps(sorted(p.name for p in clone.iterdir())) == json.dumps(
        sorted([".git", ".gitignore", "new.txt", "tracked.txt"])
    )
