"""The service's guards on their own: token, bind address, input paths, body cap."""

from __future__ import annotations

import asyncio
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

import pytest

from market_data_pipeline.errors import BadInputError, UsageError
from market_data_pipeline.serve.guards import (
    BodyLimit,
    ForbiddenError,
    ServeConfig,
    check_bind,
    guard_settings,
    resolve_inputs,
    token_ok,
)


def test_token_ok() -> None:
    assert token_ok(None, None)
    assert token_ok("s3", "Bearer s3")
    assert token_ok("s3", "bearer s3")
    assert not token_ok("s3", None)
    assert not token_ok("s3", "Bearer s4")
    assert not token_ok("s3", "Basic s3")
    assert not token_ok("s3", "Bearer ")


@pytest.mark.parametrize("host", ["127.0.0.1", "127.1.2.3", "::1", "localhost"])
def test_loopback_binds_without_a_token(host: str) -> None:
    check_bind(host, None)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.0.0.5", "example.org"])
def test_other_addresses_need_a_token(host: str) -> None:
    with pytest.raises(UsageError, match="without a token"):
        check_bind(host, None)
    check_bind(host, "t")


def _tree(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    (data / "sub").mkdir(parents=True)
    (data / "a.csv").write_text("x")
    (data / "sub" / "b.csv").write_text("x")
    (tmp_path / "secret.csv").write_text("x")
    (data / "out.csv").symlink_to(tmp_path / "secret.csv")
    (data / "in.csv").symlink_to(data / "a.csv")
    return data


def test_inputs_resolve_under_the_data_dir(tmp_path: Path) -> None:
    data = _tree(tmp_path)
    assert resolve_inputs("a.csv", data) == (str(data / "a.csv"),)
    assert resolve_inputs(["sub", str(data / "a.csv")], data) == (
        str(data / "sub" / "b.csv"),
        str(data / "a.csv"),
    )
    assert resolve_inputs("in.csv", data) == (str(data / "a.csv"),)  # a link that stays inside
    with pytest.raises(BadInputError, match="no file matches"):
        resolve_inputs("missing.csv", data)


@pytest.mark.parametrize("given", ["out.csv", "../secret.csv", "sub/../a.csv", "*.csv", "/etc"])
def test_inputs_outside_are_forbidden(tmp_path: Path, given: str) -> None:
    data = _tree(tmp_path)
    with pytest.raises(ForbiddenError):
        resolve_inputs(given, data)


def test_sink_bus_and_metrics_port_are_the_services(tmp_path: Path) -> None:
    config = ServeConfig(data_dir=tmp_path, sinks=("sqlite:///a.db", "sqlite:///b.db"))
    assert guard_settings({}, config)["sink"] == "sqlite:///a.db"
    assert guard_settings({"sink": "sqlite:///b.db"}, config)["sink"] == "sqlite:///b.db"
    for flags in (
        {"sink": "sqlite:///c.db"},
        {"bus": "redis://x"},
        {"metrics_port": 9000},
    ):
        with pytest.raises(ForbiddenError):
            guard_settings(flags, config)


def test_body_limit_refuses_what_is_too_large() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        while (await receive()).get("more_body"):
            pass
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    async def call(headers: list[tuple[bytes, bytes]], chunks: list[bytes]) -> int:
        sent: list[MutableMapping[str, Any]] = []
        queue = [
            {"type": "http.request", "body": c, "more_body": i < len(chunks) - 1}
            for i, c in enumerate(chunks)
        ]

        async def receive() -> dict[str, Any]:
            return queue.pop(0)

        async def send(message: MutableMapping[str, Any]) -> None:
            sent.append(message)

        await BodyLimit(app, 10)({"type": "http", "headers": headers}, receive, send)
        return int(sent[0]["status"])

    assert asyncio.run(call([(b"content-length", b"5")], [b"12345"])) == 200
    assert asyncio.run(call([(b"content-length", b"11")], [b"12345678901"])) == 413
    assert asyncio.run(call([], [b"123456", b"123456"])) == 413  # chunked, no length
