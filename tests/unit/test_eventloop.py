"""A NATS run gets uvloop's event loop when it is installed; every other run asyncio's own."""

from __future__ import annotations

import asyncio

import pytest

from market_data_pipeline import eventloop


async def _loop_type() -> str:
    return type(asyncio.get_running_loop()).__module__


def test_a_nats_run_runs_on_uvloop() -> None:
    pytest.importorskip("uvloop")
    assert eventloop.run(_loop_type(), source="nats").startswith("uvloop")


@pytest.mark.parametrize("source", [None, "synthetic", "replay", "provider:sim"])
def test_other_runs_keep_asyncios_loop(source: str | None) -> None:
    assert eventloop.run(_loop_type(), source=source).startswith("asyncio")


def test_without_uvloop_a_nats_run_falls_back_to_asyncio(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "uvloop", None)  # import uvloop now raises ImportError
    assert eventloop.loop_factory("nats") is None
    assert eventloop.run(_loop_type(), source="nats").startswith("asyncio")
