"""Measure the contract suite against realistic edits of Core: kills, false alarms, noticed fixes.

Copies the Core installed here into a throwaway uv environment (with this checkout installed
editable), then for every edit: restores the pristine Core, applies the edit to Core's source,
runs the contract suite and decides its verdict with the project's own code. Expectations:

    breaking  the verdict must be ``incompatible`` (a kill)
    harmless  the verdict must be ``compatible`` or ``compatible with notices`` (else a false alarm)
    fix       Core fixes a defect the pipeline works around: ``compatible with notices`` with a
              ``defect-fixed`` notice

The first row is the pristine Core (the baseline, which must be ``compatible``). Redis and
PostgreSQL are used when reachable (a run without them is ``incomplete``, as it should be).

    python bench/bench_core_mutations.py            # every edit, ~10 s each
    python bench/bench_core_mutations.py -k enum    # only edits whose name contains "enum"
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from market_data_contracts.junit import judge_suite  # noqa: E402
from market_data_contracts.matrix import contract_result  # noqa: E402
from market_data_contracts.settings import load_settings  # noqa: E402
from market_data_contracts.verdict import ContractResult, Verdict  # noqa: E402

BP = "telemetry/backpressure.py"
PROTO = "protocols.py"
REDIS = "events/adapters/redis_streams.py"
INMEM = "events/adapters/inmem.py"
CODEC = "events/codecs/json_codec.py"
Edit = Callable[[Path], None]


@dataclass(frozen=True)
class Mutation:
    """One edit of Core's source and what the suite should make of it."""

    name: str
    expect: str  # "breaking", "harmless" or "fix"
    edit: Edit


def replace(rel: str, old: str, new: str, count: int = 1) -> Edit:
    """Return an edit replacing ``old`` (which must occur exactly ``count`` times) in ``rel``."""

    def apply(core: Path) -> None:
        path = core / rel
        text = path.read_text(encoding="utf-8")
        found = text.count(old)
        if found != count:
            raise SystemExit(f"edit of {rel}: {old!r} found {found} times, expected {count}")
        path.write_text(text.replace(old, new), encoding="utf-8")

    return apply


def chain(*edits: Edit) -> Edit:
    """Return an edit applying ``edits`` in order."""

    def apply(core: Path) -> None:
        for edit in edits:
            edit(core)

    return apply


def move_module(old_rel: str, new_rel: str, old_import: str, new_import: str) -> Edit:
    """Return an edit moving a module and updating Core's own imports of it."""

    def apply(core: Path) -> None:
        (core / old_rel).rename(core / new_rel)
        for path in core.rglob("*.py"):
            text = path.read_text(encoding="utf-8")
            if old_import in text:
                path.write_text(text.replace(old_import, new_import), encoding="utf-8")

    return apply


def _xack_fix() -> Edit:
    return chain(
        replace(
            REDIS,
            "        pass  # Simplified: group tracking needed for proper XACK",
            "        for _stream, _group in self._consumer_groups:\n"
            "            if _stream == stream:\n"
            "                await _redis.xack(_stream_key, _group, envelope_id)",
        ),
    )


def _fail_fix() -> Edit:
    return replace(
        REDIS,
        '        await self._move_to_dlq(stream, envelope_id, reason, b"")',
        "        entries = await _redis.xrange(_stream_key, min=envelope_id, max=envelope_id)\n"
        '        data = entries[0][1].get("data", "") if entries else ""\n'
        "        await self._move_to_dlq(stream, envelope_id, reason, data.encode())",
    )


_EVENT_TAIL = (
    '    ts: float = Field(..., description="Unix epoch seconds")\n\n'
    "    class Config:\n        frozen = True\n\n\nclass RateAdjustment"
)
_SCHEMA_ID_FIX = (
    '            schema_id = schema_id.replace("market_data_core.", "")',
    '            schema_id = schema_id.replace("market_data_core.", "")\n'
    '            schema_id = schema_id.replace("telemetry.backpressure.", "telemetry.")',
)

MUTATIONS: tuple[Mutation, ...] = (
    # -- breaking ------------------------------------------------------------------------------
    Mutation(
        "rename field queue_size",
        "breaking",
        replace(BP, "    queue_size: int = Field(", "    queue_depth: int = Field("),
    ),
    Mutation(
        "remove field source",
        "breaking",
        replace(
            BP,
            '    source: str = Field(default="store", description="Source component (store, '
            'pipeline, etc.)")\n',
            "",
        ),
    ),
    Mutation(
        "tighten capacity gt=0 -> gt=10",
        "breaking",
        replace(BP, "capacity: int = Field(..., gt=0,", "capacity: int = Field(..., gt=10,"),
    ),
    Mutation(
        "tighten scale ge=0.0 -> ge=0.1",
        "breaking",
        replace(BP, "..., ge=0.0, le=1.0,", "..., ge=0.1, le=1.0,"),
    ),
    Mutation(
        "narrow ts float -> int",
        "breaking",
        replace(
            BP,
            '    ts: float = Field(..., description="Unix epoch seconds")',
            '    ts: int = Field(..., description="Unix epoch seconds")',
            2,
        ),
    ),
    Mutation(
        "new required field on FeedbackEvent",
        "breaking",
        replace(
            BP,
            '    level: BackpressureLevel = Field(..., description="Backpressure severity")\n',
            '    level: BackpressureLevel = Field(..., description="Backpressure severity")\n'
            '    region: str = Field(..., description="Region")\n',
        ),
    ),
    Mutation(
        "enum member added (critical)",
        "breaking",
        replace(
            BP,
            '    hard = "hard"  # At capacity, must throttle\n',
            '    hard = "hard"  # At capacity, must throttle\n    critical = "critical"\n',
        ),
    ),
    Mutation(
        "enum value changed hard -> HARD",
        "breaking",
        replace(BP, '    hard = "hard"  # At capacity', '    hard = "HARD"  # At capacity'),
    ),
    Mutation(
        "enum base str,Enum -> Enum",
        "breaking",
        replace(BP, "class BackpressureLevel(str, Enum):", "class BackpressureLevel(Enum):"),
    ),
    Mutation(
        "validator added to FeedbackEvent",
        "breaking",
        chain(
            replace(
                BP,
                "from pydantic import BaseModel, Field",
                "from pydantic import BaseModel, Field, field_validator",
            ),
            replace(
                BP,
                _EVENT_TAIL,
                '    ts: float = Field(..., description="Unix epoch seconds")\n\n'
                '    @field_validator("coordinator_id")\n    @classmethod\n'
                "    def _short_ids(cls, value: str) -> str:\n"
                "        if len(value) > 4:\n"
                "            raise ValueError('coordinator_id too long')\n"
                "        return value\n\n"
                "    class Config:\n        frozen = True\n\n\nclass RateAdjustment",
            ),
        ),
    ),
    Mutation(
        "extra=forbid on FeedbackEvent",
        "breaking",
        replace(
            BP,
            _EVENT_TAIL,
            _EVENT_TAIL.replace("frozen = True\n", 'frozen = True\n        extra = "forbid"\n'),
        ),
    ),
    Mutation(
        "RateController.apply async -> sync",
        "breaking",
        replace(
            PROTO, "    async def apply(self, adj) -> None:", "    def apply(self, adj) -> None:"
        ),
    ),
    Mutation(
        "FeedbackPublisher.publish gains a required keyword",
        "breaking",
        replace(
            PROTO,
            "    async def publish(self, event) -> None:",
            "    async def publish(self, event, *, stream) -> None:",
        ),
    ),
    Mutation(
        "Source.stream sync Iterable",
        "breaking",
        replace(
            PROTO,
            "    async def stream(self) -> AsyncIterable[T_co]:",
            "    def stream(self) -> Iterable[T_co]:",
        ),
    ),
    Mutation(
        "envelope key payload -> data",
        "breaking",
        chain(
            replace(
                CODEC, '"payload": json.loads(payload_json),', '"data": json.loads(payload_json),'
            ),
            replace(CODEC, 'raw["payload"]', 'raw["data"]', 2),
        ),
    ),
    Mutation(
        "stream key ns:stream -> ns.stream",
        "breaking",
        replace(
            REDIS, 'return f"{self.namespace}:{stream}"', 'return f"{self.namespace}.{stream}"'
        ),
    ),
    Mutation(
        "DLQ key .dlq -> :dlq",
        "breaking",
        replace(
            REDIS,
            'return f"{self._make_key(stream)}.dlq"',
            'return f"{self._make_key(stream)}:dlq"',
        ),
    ),
    Mutation(
        "moved module events.envelope -> events.envelopes",
        "breaking",
        move_module(
            "events/envelope.py", "events/envelopes.py", ".envelope import", ".envelopes import"
        ),
    ),
    # -- harmless ------------------------------------------------------------------------------
    Mutation(
        "description edited",
        "harmless",
        replace(BP, 'description="Current queue size"', 'description="Items waiting in the queue"'),
    ),
    Mutation(
        "title added",
        "harmless",
        replace(
            BP,
            'ge=0, description="Current queue size"',
            'ge=0, title="Queue", description="Current queue size"',
        ),
    ),
    Mutation(
        "class docstring edited",
        "harmless",
        replace(
            BP,
            '    """Backpressure severity levels."""',
            '    """How close the store is to capacity."""',
        ),
    ),
    Mutation(
        "optional field added",
        "harmless",
        replace(
            BP,
            '    level: BackpressureLevel = Field(..., description="Backpressure severity")\n',
            '    level: BackpressureLevel = Field(..., description="Backpressure severity")\n'
            '    note: str | None = Field(default=None, description="Free text")\n',
        ),
    ),
    Mutation(
        "default changed store -> store-1",
        "harmless",
        replace(
            BP,
            'Field(default="store", description="Source',
            'Field(default="store-1", description="Source',
        ),
    ),
    Mutation(
        "type widened queue_size int -> int | float",
        "harmless",
        replace(BP, "    queue_size: int = Field(", "    queue_size: int | float = Field("),
    ),
    Mutation(
        "constraint relaxed scale le=1.0 -> le=2.0",
        "harmless",
        replace(BP, "..., ge=0.0, le=1.0,", "..., ge=0.0, le=2.0,"),
    ),
    Mutation(
        "Source.stream declared as def -> AsyncIterator",
        "harmless",
        chain(
            replace(
                PROTO,
                "from collections.abc import AsyncIterable, Iterable",
                "from collections.abc import AsyncIterable, AsyncIterator, Iterable",
            ),
            replace(
                PROTO,
                "    async def stream(self) -> AsyncIterable[T_co]:",
                "    def stream(self) -> AsyncIterator[T_co]:",
            ),
        ),
    ),
    Mutation(
        "new unrelated model added",
        "harmless",
        replace(
            BP,
            "class RateAdjustment(BaseModel):",
            "class QueueSample(BaseModel):\n    size: int = 0\n\n\n"
            "class RateAdjustment(BaseModel):",
        ),
    ),
    # -- defect fixes --------------------------------------------------------------------------
    Mutation(
        "fix: schema_id agrees with the subscriber",
        "fix",
        chain(replace(REDIS, *_SCHEMA_ID_FIX), replace(INMEM, *_SCHEMA_ID_FIX)),
    ),
    Mutation("fix: ack sends XACK", "fix", _xack_fix()),
    Mutation(
        "fix: groups start at 0",
        "fix",
        replace(REDIS, 'groupname=group, id="$"', 'groupname=group, id="0"'),
    ),
    Mutation("fix: fail() keeps the payload", "fix", _fail_fix()),
)


def build_env(work: Path) -> tuple[Path, Path]:
    """Create the throwaway environment; return its interpreter and its Core package folder."""
    version = importlib.metadata.version("market-data-core")
    env = work / "env"
    uv = shutil.which("uv") or str(Path(sys.executable).parent / "uv")
    py = f"{sys.version_info[0]}.{sys.version_info[1]}"
    subprocess.run([uv, "venv", "-q", "--python", py, str(env)], check=True)
    python = env / "bin" / "python"
    extras = ",".join(load_settings(ROOT).extras)  # the suite's one list of requirements
    subprocess.run(
        [
            uv,
            "pip",
            "install",
            "-q",
            "--python",
            str(python),
            "-e",
            f"{ROOT}[{extras}]",
            f"market-data-core=={version}",
        ],
        check=True,
    )
    probe = "import market_data_core, os; print(os.path.dirname(market_data_core.__file__))"
    done = subprocess.run([str(python), "-c", probe], capture_output=True, text=True, check=True)
    return python, Path(done.stdout.strip().splitlines()[-1])


def run_suite(python: Path, junit: Path) -> ContractResult:
    """Run the contract suite with ``python`` and decide its verdict."""
    junit.unlink(missing_ok=True)
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    argv = [str(python), "-m", "pytest", "tests/contracts", "-m", "contracts", "-q"]
    argv += ["-p", "no:cacheprovider", f"--junitxml={junit}"]
    started = time.time()
    try:
        code: int | None = subprocess.run(
            argv, cwd=ROOT, env=env, capture_output=True, timeout=600, check=False
        ).returncode
    except subprocess.TimeoutExpired:
        code = None
    report, error = judge_suite(code, junit, started)
    return contract_result(
        core="mutated",
        python="",
        core_version=None,
        report=report,
        suite_error=error,
        duration_s=time.time() - started,
    )


def judged(expect: str, result: ContractResult) -> str:
    """Return ``ok``, ``MISSED`` (a breaking edit passed) or ``FALSE ALARM``/``NOT NOTICED``."""
    v = result.verdict
    if expect == "breaking":
        return "ok" if v is Verdict.INCOMPATIBLE else "MISSED"
    if expect == "harmless":
        return "ok" if v.passed else "FALSE ALARM"
    fixed = any(n.kind == "defect-fixed" for n in result.notices)
    return "ok" if v is Verdict.COMPATIBLE_WITH_NOTICES and fixed else "NOT NOTICED"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-k", default="", help="only edits whose name contains this text")
    args = parser.parse_args()
    chosen = [m for m in MUTATIONS if args.k.lower() in m.name.lower()]
    started_cpu = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="mdp-mutations-") as tmp:
        work = Path(tmp)
        python, core = build_env(work)
        pristine = work / "pristine"
        shutil.copytree(core, pristine, ignore=shutil.ignore_patterns("__pycache__"))
        rows = [("pristine Core (baseline)", "harmless", run_suite(python, work / "j.xml"))]
        for mutation in chosen:
            shutil.rmtree(core)
            shutil.copytree(pristine, core)
            mutation.edit(core)
            rows.append((mutation.name, mutation.expect, run_suite(python, work / "j.xml")))
            print(f"  {mutation.name}: {rows[-1][2].verdict.label}", file=sys.stderr, flush=True)
        shutil.rmtree(core)
        shutil.copytree(pristine, core)
    _print(rows)
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_s = (usage.ru_utime + usage.ru_stime) - (started_cpu.ru_utime + started_cpu.ru_stime)
    print(
        f"\nwall {time.perf_counter() - wall:.0f} s, CPU (children) {cpu_s:.0f} s, "
        f"peak child RSS {usage.ru_maxrss / 1024:.0f} MiB, load average {os.getloadavg()[0]:.2f}"
    )
    return 0 if all(judged(e, r) == "ok" for _, e, r in rows) else 1


def _print(rows: list[tuple[str, str, ContractResult]]) -> None:
    print("| edit | expected | verdict | first failure / notice | judged |")
    print("|---|---|---|---|---|")
    for name, expect, result in rows:
        first = result.first_failure
        detail = (first.contract or first.test_id) if first else ""
        if not detail and result.notices:
            detail = result.notices[0].message
        if not detail and result.reason:
            detail = result.reason
        print(
            f"| {name} | {expect} | {result.verdict.label} | {detail} | {judged(expect, result)} |"
        )
    for kind, good in (("breaking", "caught"), ("harmless", "green"), ("fix", "noticed")):
        picked = [r for _, e, r in rows[1:] if e == kind]
        hits = sum(judged(kind, r) == "ok" for r in picked)
        print(f"{kind}: {hits}/{len(picked)} {good}")


if __name__ == "__main__":
    sys.exit(main())
