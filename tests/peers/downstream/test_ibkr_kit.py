"""market-data-ibkr's provider against the kit: its connection-failure path (no gateway here)."""

from __future__ import annotations

import socket
from typing import Any

import pytest
from market_data_ibkr import IBKRProvider, IBKRSettings

from market_data_contracts import kit


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # nothing listens there once the socket is closed


class TestIBKRProvider(kit.BaseMarketDataProviderTests):
    @pytest.fixture
    def provider(self) -> Any:
        settings = IBKRSettings(host="127.0.0.1", port=_closed_port(), client_id=17)
        return IBKRProvider(settings)
