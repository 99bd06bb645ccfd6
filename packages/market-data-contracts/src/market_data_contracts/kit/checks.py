"""Helpers the base classes share: Core's protocols by name and the signature check."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable
from typing import Any, TypeVar

from .. import conformance

T = TypeVar("T")


def core_protocol(name: str) -> Any:
    """Return a Core protocol by its name in ``market_data_contracts.core``."""
    from .. import core

    return getattr(core, name)


def signature_problems(obj: Any, protocol_name: str) -> list[str]:
    """Return how ``obj``'s class differs from the Core protocol (empty when it matches)."""
    return conformance.conformance_problems(type(obj), core_protocol(protocol_name))


async def within(awaitable: Awaitable[T], timeout_s: float, what: str) -> T:
    """Await ``awaitable``; fail the test with ``what`` when it takes longer than ``timeout_s``."""
    import pytest

    try:
        return await asyncio.wait_for(awaitable, timeout_s)
    except TimeoutError:
        pytest.fail(f"{what} did not finish within {timeout_s:g} s")


async def first_item(stream: Any) -> Any:
    """Return the first item of an async iterable, or of the one a coroutine returns."""
    if inspect.isawaitable(stream):
        stream = await stream
    iterator = aiter(stream)
    try:
        return await anext(iterator)
    finally:
        close = getattr(iterator, "aclose", None)
        if close is not None:
            await close()
