"""``--source provider:NAME``: Core MarketDataProviders found through entry points.

The providers here are real plugins: a distribution on ``sys.path`` with an
``entry_points.txt`` in the ``market_data_pipeline.providers`` group, loaded by
``importlib.metadata`` exactly as an installed package would be.
"""

from __future__ import annotations

import importlib
import textwrap
from pathlib import Path

import pytest

from market_data_pipeline.config import RunSettings
from market_data_pipeline.runtime import execute

PLUGIN = '''
from datetime import datetime, timedelta, timezone
from decimal import Decimal

from market_data_core import ConnectionFailed, Quote, Trade

T0 = datetime(2024, 1, 2, 9, 30, tzinfo=timezone.utc)


class CountingProvider:
    """Streams ``ticks`` trades per instrument, one second apart."""

    def __init__(self, ticks="120"):
        self.ticks = int(ticks)

    async def stream_trades(self, instruments):
        for i in range(self.ticks):
            for inst in instruments:
                yield Trade(symbol=inst.symbol, price=Decimal("10.5"), size=2,
                            ts=T0 + timedelta(seconds=i))


class RefusingProvider:
    async def __aenter__(self):
        raise ConnectionFailed("cannot reach the gateway at 127.0.0.1:4002: connection refused")

    async def __aexit__(self, *exc):
        return None


class QuotingSession:
    """A session-style provider: quotes one minute apart, the last one without an ask."""

    exits = []

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        QuotingSession.exits.append(exc)

    async def stream_quotes(self, instruments):
        for i in range(3):
            for inst in instruments:
                ask = None if i == 2 else Decimal("10.5")
                yield Quote(symbol=inst.symbol, bid=Decimal("10"), ask=ask,
                            timestamp=T0 + timedelta(minutes=i))


def counting(**options):
    return CountingProvider(**options)


def refusing(**options):
    return RefusingProvider()


def quoting(**options):
    return QuotingSession()
'''


@pytest.fixture
def plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "mdp_test_plugin.py").write_text(PLUGIN, encoding="utf-8")
    info = tmp_path / "mdp_test_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: mdp-test-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        textwrap.dedent(
            """\
            [market_data_pipeline.providers]
            counting = mdp_test_plugin:counting
            refusing = mdp_test_plugin:refusing
            quoting = mdp_test_plugin:quoting
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))


def _settings(tmp_path: Path, source: str, **values: object) -> RunSettings:
    sink = f"sqlite:///{tmp_path / 'bars.db'}"
    return RunSettings.model_validate(
        {"source": source, "sink": sink, "symbols": "AAA,BBB", "resolution": "1m", **values}
    )


async def test_a_provider_streams_trades_into_bars(plugin: None, tmp_path: Path) -> None:
    settings = _settings(tmp_path, "provider:counting", provider_option={"ticks": "120"})
    report = await execute(settings)
    assert report.exit_code == 0, report.error
    assert report.ticks_admitted == 240
    assert report.reconciled
    assert report.bars_written == 4  # two symbols, two minutes


async def test_quotes_become_mid_price_ticks_and_the_session_is_left(
    plugin: None, tmp_path: Path
) -> None:
    report = await execute(_settings(tmp_path, "provider:quoting", kind="quotes"))
    assert report.exit_code == 0, report.error
    assert report.ticks_admitted == 4  # two symbols, two priced quotes each
    assert report.bad_reasons == {"no bid/ask": 2}
    assert report.reconciled
    plugin_module = importlib.import_module("mdp_test_plugin")  # as the entry point loaded it
    assert plugin_module.QuotingSession.exits == [(None, None, None)]


async def test_a_connection_failure_is_one_line(plugin: None, tmp_path: Path) -> None:
    report = await execute(_settings(tmp_path, "provider:refusing"))
    assert report.exit_code == 1
    assert report.error == (
        "provider refusing: ConnectionFailed: cannot reach the gateway at 127.0.0.1:4002: "
        "connection refused"
    )


async def test_an_unknown_provider_names_the_known_ones(plugin: None, tmp_path: Path) -> None:
    report = await execute(_settings(tmp_path, "provider:nope"))
    assert report.exit_code == 2
    assert report.error is not None
    assert report.error.startswith("no market-data provider 'nope' (known: ")
    assert "counting" in report.error and "ibkr" in report.error


async def test_ibkr_without_its_package_says_what_to_install(tmp_path: Path) -> None:
    pytest.importorskip("market_data_pipeline")  # the ibkr entry point is this package's own
    try:
        import market_data_ibkr  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("market-data-ibkr is installed")
    report = await execute(_settings(tmp_path, "provider:ibkr"))
    assert report.exit_code == 2
    assert report.error == (
        "--source provider:ibkr needs market-data-ibkr: pip install market-data-ibkr"
    )
