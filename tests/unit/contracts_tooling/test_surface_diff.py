"""Core surface (from the installed Core), the source scan, and diffs readable by a person."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from market_data_contracts import diff, surfaces
from market_data_contracts.cli import contracts_app
from market_data_contracts.usage import symbols_in_source


def test_scan_sees_from_imports_and_alias_attributes() -> None:
    source = (
        "from market_data_core import _models as m\n"
        "from market_data_core.telemetry import FeedbackEvent\n"
        "import market_data_core.protocols as p\n"
        "x = m.Trade; y = p.Source\n"
    )
    assert symbols_in_source(source) == {
        "market_data_core:_models",
        "market_data_core._models:Trade",
        "market_data_core.telemetry:FeedbackEvent",
        "market_data_core.protocols:",
        "market_data_core.protocols:Source",
    }


def test_installed_surface_describes_protocols_models_and_enums() -> None:
    data = surfaces.installed_surface()
    symbols = data["symbols"]
    apply = symbols["market_data_core.protocols:RateController"]["methods"]["apply"]
    assert apply["async"] is True and [p["name"] for p in apply["params"]] == ["self", "adj"]
    assert apply["call"] == "await"
    event = symbols["market_data_core.telemetry:FeedbackEvent"]["contract"]
    capacity = event["fields"]["capacity"]
    assert capacity["required"] and capacity["schema"]["exclusiveMinimum"] == 0
    assert event["enums"]["BackpressureLevel"]["bases"][0] == "str"
    level = symbols["market_data_core.telemetry:BackpressureLevel"]
    assert level["values"] == ["hard", "ok", "soft"] and "Enum" in level["bases"]
    assert len(symbols["market_data_core._models:Bar"]["schema_hash"]) == 16
    wire = data["wire"]
    assert wire["stream_key"] == "{namespace}:{stream}"
    assert wire["dlq_key"] == "{namespace}:{stream}.dlq"
    assert wire["envelope_keys"] == ["key", "meta", "payload", "ts"]
    assert wire["entry_field"] == "data"


def test_diff_reads_like_a_changelog() -> None:
    before = {"core_version": "1", "symbols": {"M": {"fields": {"a": {"type": "int"}}, "v": ["x"]}}}
    after = {"core_version": "2", "symbols": {"M": {"fields": {"a": {"type": "str"}}, "v": ["y"]}}}
    text = diff.render_changes(diff.diff_surfaces(before, after), "Core 1 -> 2")
    assert text.splitlines() == [
        "Core 1 -> 2: 3 changes",
        "  ~ symbols > M > fields > a > type: 'int' -> 'str'",
        "  - symbols > M > v > x: 'x'",
        "  + symbols > M > v > y: 'y'",
    ]
    assert diff.render_changes([], "same") == "same: no change"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=4)
    ),
    max_leaves=20,
)


@given(json_values, json_values)
def test_diff_is_empty_exactly_when_documents_are_equal(a: object, b: object) -> None:
    changes = diff.diff_json(a, b)
    if a == b:
        assert changes == []
    elif json.dumps(a, sort_keys=True) != json.dumps(b, sort_keys=True):
        assert changes


def test_cli_surface_and_diff_of_files(tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "surface.json"
    result = runner.invoke(contracts_app, ["surface", "--out", str(out)])
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    changed = json.loads(out.read_text())
    changed["symbols"]["market_data_core.telemetry:BackpressureLevel"]["values"].append("panic")
    other = tmp_path / "other.json"
    other.write_text(json.dumps(changed))
    result = runner.invoke(contracts_app, ["diff", str(out), str(other)])
    assert result.exit_code == 0, result.output
    assert "1 breaking" in result.output and "panic" in result.output
    assert data["core_version"] in result.output
    result = runner.invoke(contracts_app, ["diff", "--json", str(out), str(other)])
    report = json.loads(result.output)
    assert report["worst"] == "breaking" and report["changes"][0]["severity"] == "breaking"


@pytest.mark.slow
def test_cli_surface_and_diff_of_two_real_releases(tmp_path: Path) -> None:
    """1.2.31 shadows the top-level Bar: the diff of 1.2.30 and 1.2.31 says so, through the CLI."""
    runner = CliRunner()
    out = tmp_path / "s.json"
    result = runner.invoke(contracts_app, ["surface", "--core", "1.2.30", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text())["core_version"] == "1.2.30"
    result = runner.invoke(contracts_app, ["diff", "--json", "1.2.30", "1.2.31"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert (data["before"], data["after"]) == ("1.2.30", "1.2.31")
    assert any(c["where"] == "exports.market_data_core.Bar" for c in data["changes"])
    same = runner.invoke(contracts_app, ["diff", str(out), "1.2.30"])
    assert same.exit_code == 0 and "no change" in same.output, same.output


def _method(*names: str) -> dict[str, object]:
    return {"params": [{"name": name, "kind": "positional_or_keyword"} for name in names]}


def test_diff_sees_reordered_parameters() -> None:
    changes = diff.diff_json(_method("self", "adj", "strict"), _method("self", "strict", "adj"))
    assert [c.describe() for c in changes] == [
        '~ params > (order): ["self", "adj", "strict"] -> ["self", "strict", "adj"]'
    ]


def test_diff_sees_a_parameter_inserted_before_others() -> None:
    changes = diff.diff_json(_method("self", "adj"), _method("self", "provider", "adj"))
    assert {c.path for c in changes} == {("params", "(order)"), ("params", "provider")}
    appended = diff.diff_json(_method("self", "adj"), _method("self", "adj", "extra"))
    assert [c.path for c in appended] == [("params", "extra")]
