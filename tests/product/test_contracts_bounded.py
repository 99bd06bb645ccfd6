"""A breaking Core edit makes the contract suite fail fast, never hang Core's release.

The suite runs in a subprocess with a pytest plugin that edits Core in that process only (the
edit a Core release could ship), then its verdict is decided by the project's own code. The
subprocess is given the matrix's whole-suite budget: a suite still running then is a hang.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from market_data_contracts.junit import judge_suite
from market_data_contracts.matrix import SUITE_TIMEOUT_S, contract_result
from market_data_contracts.verdict import ContractResult, Verdict

from .conftest import ROOT, clean_env, run

# The subprocess's own budget bounds each test; this only lets it be reached.
pytestmark = [pytest.mark.slow, pytest.mark.redis, pytest.mark.timeout(SUITE_TIMEOUT_S + 60)]

# Core's codec with its first two parameters swapped: encode(payload, schema_id, ...). Every
# caller passing (schema_id, payload) now fails inside Core.
SWAPPED_ENCODE = """
from market_data_core.events.codecs import json_codec

_original = json_codec.JsonCodec.encode


def encode(self, payload, schema_id, key=None, *, include_hash=True):
    return _original(self, schema_id, payload, key, include_hash=include_hash)


json_codec.JsonCodec.encode = encode
"""

# Core's codec waiting forever: every test that encodes would wait for its timeout.
HANGING_ENCODE = """
import time

from market_data_core.events.codecs import json_codec


def encode(self, *args, **kwargs):
    time.sleep(3600)


json_codec.JsonCodec.encode = encode
"""


def _suite_with(tmp_path: Path, plugin: str, *pytest_args: str) -> ContractResult:
    (tmp_path / "core_edit.py").write_text(plugin, encoding="utf-8")
    junit = tmp_path / "junit.xml"
    env = clean_env()
    env["PYTHONPATH"] = str(tmp_path)
    argv = [sys.executable, "-m", "pytest", "tests/contracts", "-m", "contracts", "-q"]
    argv += ["-p", "core_edit", "-p", "no:cacheprovider", f"--junitxml={junit}", *pytest_args]
    started = time.time()
    done = run(argv, cwd=ROOT, env=env, timeout=SUITE_TIMEOUT_S)  # past it: a hang, a failure
    report, error = judge_suite(done.returncode, junit, started)
    return contract_result(
        core="edited", python="", core_version=None, report=report, suite_error=error
    )


def test_swapping_the_codecs_arguments_fails_the_suite_instead_of_hanging_it(
    tmp_path: Path, redis_url: str
) -> None:
    result = _suite_with(tmp_path, SWAPPED_ENCODE)
    assert result.verdict is Verdict.INCOMPATIBLE, result.reason
    assert result.first_failure is not None
    assert result.counts.failed > 0 and result.counts.passed > 0


def test_a_core_that_waits_forever_costs_one_test_timeout_then_the_suite_stops(
    tmp_path: Path, redis_url: str
) -> None:
    # --timeout shortens the suite's per-test timeout, so this costs seconds, not a minute.
    result = _suite_with(tmp_path, HANGING_ENCODE, "--timeout", "3")
    assert result.verdict is Verdict.INCOMPATIBLE, result.reason
    assert result.counts.failed == 1, result.counts  # the first that waited; none after it ran
    assert result.first_failure is not None and "Timeout" in result.first_failure.message
