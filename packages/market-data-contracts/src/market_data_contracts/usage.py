"""Find every Core symbol this project's source uses, by reading the source (no imports).

A symbol is ``module:name`` (``market_data_core.telemetry:FeedbackEvent``) or a bare module
(``market_data_core.events.codecs:``). Both ``from market_data_core.x import y`` and attribute use
through a module alias (``from market_data_core import _models as m`` then ``m.Trade``) count.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path

from .surface import resolve

__all__ = ["core_symbols", "resolve", "symbols_in_source"]

CORE_PACKAGE = "market_data_core"


def core_symbols(src: Path) -> list[str]:
    """Return the sorted ``module:name`` Core symbols used anywhere under ``src``."""
    found: set[str] = set()
    for path in sorted(src.rglob("*.py")):
        found.update(symbols_in_source(path.read_text(encoding="utf-8")))
    return sorted(found)


def symbols_in_source(text: str) -> set[str]:
    """Return the Core symbols one module's source uses."""
    tree = ast.parse(text)
    aliases: dict[str, str] = {}
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(_plain_imports(node.names, aliases))
        elif isinstance(node, ast.ImportFrom) and _is_core(node.module):
            found.update(_from_imports(str(node.module), node.names, aliases))
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            module = aliases.get(node.value.id)
            if module is not None:
                found.add(f"{module}:{node.attr}")
    return found


def _is_core(module: str | None) -> bool:
    return module is not None and (module == CORE_PACKAGE or module.startswith(CORE_PACKAGE + "."))


def _plain_imports(names: Iterable[ast.alias], aliases: dict[str, str]) -> set[str]:
    found: set[str] = set()
    for alias in names:
        if _is_core(alias.name):
            found.add(f"{alias.name}:")
            if alias.asname:
                aliases[alias.asname] = alias.name
    return found


def _from_imports(module: str, names: Iterable[ast.alias], aliases: dict[str, str]) -> set[str]:
    found: set[str] = set()
    for alias in names:
        found.add(f"{module}:{alias.name}")
        # The name may be a submodule or a class; attribute use through it is recorded either way.
        aliases[alias.asname or alias.name] = f"{module}.{alias.name}"
    return found
