"""Describe the Core contract surface a project depends on, as JSON.

This module needs only the standard library and an installed ``market_data_core`` (plus its
pydantic), so it can run as a script inside any environment, e.g. a matrix cell with nothing but
Core: ``python surface.py < symbols.json`` prints the surface of the listed ``module:name`` symbols.

For each symbol: protocols give method signatures (sync or async, parameters, return annotation);
pydantic models give fields with types, defaults and constraints, frozen/extra settings and a hash
of their JSON schema; enums give their values. ``exports`` records whether Core's top-level names
still refer to the same classes (1.2.31 shadowed ``Bar`` with another class).
"""

from __future__ import annotations

import enum
import hashlib
import importlib
import importlib.metadata
import inspect
import json
import platform
import sys
import warnings
from typing import Any

from .usage import resolve

CORE_DISTRIBUTION = "market-data-core"


def build_surface(symbols: list[str]) -> dict[str, Any]:
    """Return the surface of ``symbols`` in the installed Core, ready for ``json.dumps``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        described = {symbol: describe(_resolve(symbol)) for symbol in sorted(symbols)}
        exports = _exports(symbols)
    return {
        "core_version": importlib.metadata.version(CORE_DISTRIBUTION),
        "python": platform.python_version(),
        "symbols": described,
        "exports": exports,
    }


def schema_hash(schema: dict[str, Any]) -> str:
    """Return a short, stable hash of a JSON schema (canonical JSON, sorted keys)."""
    canonical = json.dumps(schema, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


def describe(obj: object) -> dict[str, Any]:
    """Describe one Core object by kind: protocol, model, enum, class, function or module."""
    if inspect.ismodule(obj):
        return {"kind": "module"}
    if isinstance(obj, type) and issubclass(obj, enum.Enum):
        return {"kind": "enum", "values": sorted(str(member.value) for member in obj)}
    if isinstance(obj, type) and getattr(obj, "_is_protocol", False):
        return _describe_protocol(obj)
    if isinstance(obj, type) and hasattr(obj, "model_json_schema"):
        return _describe_model(obj)
    if isinstance(obj, type):
        return {"kind": "class", "methods": _methods(obj, public_only=True)}
    if callable(obj):
        return {"kind": "function", **_signature(obj)}
    return {"kind": "value", "repr": repr(obj)}


def _resolve(symbol: str) -> object:
    try:
        return resolve(symbol)
    except LookupError:
        return _MISSING


class _Missing:
    def __repr__(self) -> str:
        return "<missing>"


_MISSING = _Missing()


def _describe_protocol(proto: type) -> dict[str, Any]:
    return {
        "kind": "protocol",
        "runtime_checkable": bool(getattr(proto, "_is_runtime_protocol", False)),
        "methods": _methods(proto, public_only=False),
    }


def _methods(cls: type, *, public_only: bool) -> dict[str, Any]:
    names = getattr(cls, "__protocol_attrs__", None) or [
        name for name in vars(cls) if not name.startswith("__")
    ]
    out: dict[str, Any] = {}
    for name in sorted(names):
        member = inspect.getattr_static(cls, name, None)
        if public_only and name.startswith("_"):
            continue
        if callable(member):
            out[name] = _signature(member)
    return out


def _signature(fn: Any) -> dict[str, Any]:
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return {"async": False, "params": [], "returns": "?"}
    params = [
        {
            "name": p.name,
            "kind": p.kind.name.lower(),
            "default": None if p.default is p.empty else repr(p.default),
            "annotation": None if p.annotation is p.empty else _text(p.annotation),
        }
        for p in sig.parameters.values()
    ]
    returns = None if sig.return_annotation is sig.empty else _text(sig.return_annotation)
    is_async = inspect.iscoroutinefunction(fn) or inspect.isasyncgenfunction(fn)
    return {"async": is_async, "params": params, "returns": returns}


def _text(annotation: Any) -> str:
    return annotation if isinstance(annotation, str) else inspect.formatannotation(annotation)


def _describe_model(model: Any) -> dict[str, Any]:
    config = getattr(model, "model_config", {})
    try:
        schema: dict[str, Any] = model.model_json_schema()
    except Exception as exc:  # a generic model may not produce a schema: record why
        schema = {"error": type(exc).__name__}
    fields = {name: _field(info) for name, info in model.model_fields.items()}
    return {
        "kind": "model",
        "frozen": bool(config.get("frozen", False)),
        "extra": str(config.get("extra") or "ignore"),
        "fields": fields,
        "schema_hash": schema_hash(schema),
    }


def _field(info: Any) -> dict[str, Any]:
    required = bool(info.is_required())
    default = None
    if not required:
        default = "<factory>" if info.default_factory is not None else repr(info.default)
    return {
        "type": _text(info.annotation),
        "required": required,
        "default": default,
        "constraints": sorted(repr(item) for item in info.metadata),
    }


def _exports(symbols: list[str]) -> dict[str, str]:
    """Say whether ``market_data_core.<Name>`` is the same object as each symbol used."""
    top = importlib.import_module("market_data_core")
    out: dict[str, str] = {}
    for symbol in symbols:
        module, _, name = symbol.partition(":")
        if not name or module == "market_data_core" or name.startswith("_"):
            continue
        used = _resolve(symbol)
        exported = getattr(top, name, _MISSING)
        if exported is _MISSING:
            state = "not exported"
        elif exported is used:
            state = f"same as {module}.{name}"
        else:
            state = f"different object: {getattr(exported, '__module__', '?')}.{name}"
        out[f"market_data_core.{name}"] = state
    return out


def main() -> int:
    """Read the symbol list (JSON array) on stdin and print the surface as JSON."""
    symbols = json.load(sys.stdin)
    json.dump(build_surface(list(symbols)), sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
