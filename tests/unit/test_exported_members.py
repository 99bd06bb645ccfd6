"""The curated public API: every name in ``__all__`` resolves, and nothing else is promised."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import market_data_pipeline


def test_all_is_sorted_and_every_name_resolves() -> None:
    names = market_data_pipeline.__all__
    assert names == sorted(names)
    for name in names:
        assert getattr(market_data_pipeline, name) is not None, name


def test_unknown_name_raises_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no_such_thing"):
        _ = market_data_pipeline.no_such_thing


def test_importing_the_package_does_not_import_core() -> None:
    code = "import sys, market_data_pipeline; print('market_data_core' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_type_checkers_see_the_real_names(tmp_path: Path) -> None:
    from mypy import api

    probe = tmp_path / "probe.py"
    probe.write_text(
        "import market_data_pipeline as mdp\n"
        "reveal_type(mdp.Pipeline)\n"
        "reveal_type(mdp.bars)\n"
        "reveal_type(mdp.run)\n"
    )
    out, _, code = api.run(["--strict", "--no-incremental", str(probe)])
    assert code == 0 or "Revealed type" in out, out
    revealed = [line for line in out.splitlines() if "Revealed type" in line]
    assert len(revealed) == 3
    assert not any('"Any"' in line for line in revealed), out
    assert "polars.dataframe.frame.DataFrame" in revealed[1]
    assert "RunReport" in revealed[2]


def test_the_package_ships_py_typed() -> None:
    assert (Path(market_data_pipeline.__file__).parent / "py.typed").is_file()


def test_bars_is_the_function_even_after_the_aggregation_package_is_imported() -> None:
    import market_data_pipeline.aggregation.builder

    assert callable(market_data_pipeline.bars)
