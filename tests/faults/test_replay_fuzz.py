"""Fuzzed replay input bytes: ``mdp run`` exits 0 or 2, never with a traceback, and writes
nothing when it exits 2."""

from __future__ import annotations

import gzip
import io
import json
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from market_data_pipeline.cli.app import app

from .conftest import Scenario
from .procs import table

pytestmark = pytest.mark.faults
EXAMPLES = 150

VALID_CSV = (
    b"symbol,ts,price,size\n"
    b"AAA,2024-01-02T09:00:00Z,100.5,3\n"
    b"BBB,1704186001000,99.25,1\n"
    b"AAA,2024-01-02 09:00:02,100.75,2\n"
)
FIELDS = st.sampled_from(
    [
        "AAA",
        "",
        "NA",
        "nan",
        "-1",
        "0",
        "1e308",
        "-1e308",
        "9" * 30,
        "1677-01-01",
        "9999-12-31",
        "2024-01-02T09:00:00Z",
        "2024-02-30",
        "1704186000",
        "1704186000000000000000",
        "[/x]",
        "[bold]1[/bold]",
        '"',
        '""',
        "\x00",
        "\xe9",
        "1,5",
        " 100 ",
        "inf",
        "0x10",
    ]
)
HEADERS = st.lists(
    st.sampled_from(
        [
            "symbol",
            "ts",
            "time",
            "price",
            "size",
            "bid",
            "ask",
            "open",
            "high",
            "low",
            "close",
            "volume",
            "vwap",
            "trades",
            "x",
            "",
            "TS",
            "Price",
        ]
    ),
    min_size=1,
    max_size=7,
)


@st.composite
def csv_tables(draw: st.DrawFn) -> bytes:
    header = draw(HEADERS)
    sep = draw(st.sampled_from([",", ";", "\t", "|"]))
    end = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    rows = draw(st.lists(st.lists(FIELDS, min_size=0, max_size=len(header) + 1), max_size=8))
    lines = [sep.join(header), *(sep.join(row) for row in rows)]
    return end.join(lines).encode("utf-8", "surrogatepass")


@st.composite
def mutated(draw: st.DrawFn, base: bytes) -> bytes:
    data = bytearray(base)
    for _ in range(draw(st.integers(1, 6))):
        at = draw(st.integers(0, len(data)))
        edit = draw(st.sampled_from(["insert", "delete", "replace"]))
        chunk = draw(st.binary(min_size=1, max_size=8))
        if edit == "insert":
            data[at:at] = chunk
        elif edit == "delete":
            del data[at : at + len(chunk)]
        else:
            data[at : at + len(chunk)] = chunk
    return bytes(data)


def _parquet(price: pa.Array) -> bytes:
    ts = pa.array([1_704_186_000_000 + i for i in range(len(price))], pa.timestamp("ms"))
    sink = io.BytesIO()
    pq.write_table(pa.table({"symbol": ["A"] * len(price), "ts": ts, "price": price}), sink)
    return sink.getvalue()


PARQUET = _parquet(pa.array([1.0, 2.0, 3.0]))
inputs = st.one_of(
    st.tuples(st.just(".csv"), st.binary(max_size=400)),
    st.tuples(st.just(".csv"), csv_tables()),
    st.tuples(st.just(".csv"), mutated(VALID_CSV)),
    st.tuples(st.just(".csv.gz"), mutated(VALID_CSV).map(gzip.compress)),
    st.tuples(st.just(".csv.gz"), mutated(gzip.compress(VALID_CSV))),
    st.tuples(st.just(".parquet"), mutated(PARQUET)),
)

runner = CliRunner()


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(case=inputs, skip=st.booleans())
def test_replay_input_fuzz(case: tuple[str, bytes], skip: bool, scenario: Scenario) -> None:
    suffix, data = case
    with tempfile.TemporaryDirectory(prefix="mdp-fuzz-") as tmp:
        path = Path(tmp) / f"input{suffix}"
        path.write_bytes(data)
        sink = f"sqlite:///{Path(tmp) / 'bars.db'}"
        args = ["run", "--input", str(path), "--sink", sink, "--json"]
        result = runner.invoke(app, [*args, "--on-bad-row", "skip" if skip else "fail"])
        code = result.exit_code
        crashed = result.exception is not None and not isinstance(result.exception, SystemExit)
        problems = []
        if crashed or "Traceback" in result.output:
            problems.append(f"traceback: {result.exception!r}")
        if code not in (0, 2):
            problems.append(f"exit {code}: {result.stderr.strip()[-200:]}")
        try:
            json.loads(result.stdout)
        except ValueError:
            problems.append("no JSON summary")
        if code == 2 and table(sink).height:
            problems.append(f"exit 2 but {table(sink).height} bars written")
        scenario.record(not problems, f"{suffix} {data[:60]!r}: {'; '.join(problems)}")
        assert not problems, problems
