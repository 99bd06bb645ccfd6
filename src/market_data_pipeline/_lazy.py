"""Lazy package exports: a name is imported from its module on first use, then cached."""

from __future__ import annotations

import importlib
import sys
import warnings
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(
    package: str,
    exports: Mapping[str, str],
    *,
    within: str | None = None,
    ignore: tuple[type[Warning], ...] = (),
) -> Callable[[str], Any]:
    """Return a module ``__getattr__`` for ``package`` that imports ``exports[name]`` on use.

    Importing a package stays cheap (no polars, Core or pydantic) until a name is used. Module
    names are relative to ``within`` (default: ``package`` itself); warnings of the ``ignore``
    categories that the import raises are silenced.
    """

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        with warnings.catch_warnings():
            for category in ignore:
                warnings.simplefilter("ignore", category)
            value = getattr(importlib.import_module(f".{module}", within or package), name)
        setattr(sys.modules[package], name, value)  # the next look-up skips __getattr__
        return value

    return __getattr__
