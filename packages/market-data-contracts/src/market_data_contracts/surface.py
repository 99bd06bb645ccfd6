"""Describe the Core contract surface a project depends on, as JSON.

This module needs only the standard library and an installed ``market_data_core`` (plus its
pydantic), and imports nothing from this package, so it runs as a script inside any environment,
e.g. one holding nothing but Core: ``python surface.py < symbols.json`` prints the surface of the
listed ``module:name`` symbols.

For each symbol: protocols give method signatures (sync or async, how a caller uses the result,
parameters, return annotation); pydantic models give their ``contract`` (what the pipeline depends
on: fields with their JSON schema without titles and descriptions, required-ness, defaults,
frozen/extra, enums with their base classes, validators and serializers) plus a hash of the whole
JSON schema (a change of that hash alone is cosmetic: a description or title); enums give their
values and base classes. ``exports`` records whether Core's top-level names still refer to the same
classes (1.2.31 shadowed ``Bar`` with another class). ``wire`` records the Redis wire facts probed
from Core itself: stream key and DLQ key layout, entry field, envelope keys and schema ids.
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

CORE_DISTRIBUTION = "market-data-core"


def build_surface(symbols: list[str]) -> dict[str, Any]:
    """Return the surface of ``symbols`` in the installed Core, ready for ``json.dumps``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        described = {symbol: describe(_resolve(symbol)) for symbol in sorted(symbols)}
        exports = _exports(symbols)
        wire = wire_facts()
    return {
        "core_version": importlib.metadata.version(CORE_DISTRIBUTION),
        "python": platform.python_version(),
        "symbols": described,
        "exports": exports,
        "wire": wire,
    }


def resolve(symbol: str) -> object:
    """Import and return the object a ``module:name`` symbol names; raise ``LookupError``."""
    dotted, _, attr = symbol.partition(":")
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj: object = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for name in [*parts[cut:], *([attr] if attr else [])]:
            if not hasattr(obj, name):
                raise LookupError(f"{symbol}: {type(obj).__name__} has no attribute {name!r}")
            obj = getattr(obj, name)
        return obj
    raise LookupError(f"{symbol}: module {parts[0]!r} cannot be imported")


def schema_hash(schema: dict[str, Any]) -> str:
    """Return a short, stable hash of a JSON schema (canonical JSON, sorted keys)."""
    canonical = json.dumps(schema, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


def describe(obj: object) -> dict[str, Any]:
    """Describe one Core object by kind: protocol, model, enum, class, function or module."""
    if inspect.ismodule(obj):
        return {"kind": "module"}
    if isinstance(obj, type) and issubclass(obj, enum.Enum):
        return {"kind": "enum", **_enum(obj)}
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
    return {"async": is_async, "call": call_kind(fn), "params": params, "returns": returns}


_ITERATOR_NAMES = ("AsyncIterator", "AsyncIterable", "AsyncGenerator")


def call_kind(fn: Any) -> str:
    """Return how a caller uses what ``fn`` returns: ``await``, ``async-for``, ``either``, ``call``.

    An async generator and a plain ``def`` annotated to return an async iterator are both used
    with ``async for``; an ``async def`` annotated so (a protocol stub) admits both readings.
    """
    try:
        returns = inspect.signature(fn).return_annotation
    except (TypeError, ValueError):
        returns = inspect.Signature.empty
    iterates = returns is not inspect.Signature.empty and any(
        name in _text(returns) for name in _ITERATOR_NAMES
    )
    if inspect.isasyncgenfunction(fn):
        return "async-for"
    if inspect.iscoroutinefunction(fn):
        return "either" if iterates else "await"
    return "async-for" if iterates else "call"


def _text(annotation: Any) -> str:
    return annotation if isinstance(annotation, str) else inspect.formatannotation(annotation)


def _describe_model(model: Any) -> dict[str, Any]:
    try:
        schema: dict[str, Any] = model.model_json_schema()
    except Exception as exc:  # a generic model may not produce a schema: record why
        schema = {"error": type(exc).__name__}
    return {"kind": "model", "contract": model_contract(model), "schema_hash": schema_hash(schema)}


# JSON-schema keywords that only inform a reader: never part of the contract.
_COSMETIC_KEYS = frozenset({"title", "description", "examples", "$comment"})


def model_contract(model: Any) -> dict[str, Any]:
    """Return what the pipeline depends on in a pydantic model, and nothing a reader alone sees.

    Fields (JSON names) with their JSON schema less titles, descriptions and examples, whether
    they are required and their default; nested models and enums from ``$defs``; frozen/extra;
    the base classes of every enum a field uses (a ``str`` enum compares equal to its value, a
    plain ``Enum`` does not); the names of validators and serializers (they accept, reject or
    reshape data the schema does not show).
    """
    config = getattr(model, "model_config", {})
    try:
        schema = model.model_json_schema()
    except Exception as exc:
        return {"error": f"no JSON schema: {type(exc).__name__}"}
    body = _object_contract(schema)
    body["defs"] = {name: _def_contract(d) for name, d in sorted(schema.get("$defs", {}).items())}
    body["frozen"] = bool(config.get("frozen", False))
    body["extra"] = str(config.get("extra") or "ignore")
    body["enums"] = _field_enums(model)
    body["hooks"] = _hooks(model)
    return body


def _object_contract(schema: dict[str, Any]) -> dict[str, Any]:
    required = set(schema.get("required", ()))
    fields: dict[str, Any] = {}
    for name, prop in sorted(schema.get("properties", {}).items()):
        cleaned = _strip(prop)
        field: dict[str, Any] = {"required": name in required}
        if "default" in cleaned:
            field["default"] = cleaned.pop("default")
        field["schema"] = cleaned
        fields[name] = field
    out: dict[str, Any] = {"fields": fields}
    if "additionalProperties" in schema:
        out["additional"] = _strip(schema["additionalProperties"])
    return out


def _def_contract(schema: dict[str, Any]) -> dict[str, Any]:
    if "properties" in schema:
        return {"kind": "object", **_object_contract(schema)}
    return {"kind": "schema", "schema": _strip(schema)}


def _strip(node: Any) -> Any:
    if isinstance(node, list):
        return [_strip(item) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _COSMETIC_KEYS:
            continue
        if key == "properties" and isinstance(value, dict):
            out[key] = {name: _strip(sub) for name, sub in value.items()}
        else:
            out[key] = _strip(value)
    return out


def _enum(cls: type[enum.Enum]) -> dict[str, Any]:
    bases = [base.__name__ for base in cls.__mro__[1:] if base is not object]
    return {"values": sorted(str(member.value) for member in cls), "bases": bases}


def _field_enums(model: Any) -> dict[str, Any]:
    found: dict[str, Any] = {}
    seen: set[int] = set()
    pending = [info.annotation for info in model.model_fields.values()]
    while pending:
        annotation = pending.pop()
        if id(annotation) in seen:
            continue
        seen.add(id(annotation))
        if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
            found[annotation.__name__] = _enum(annotation)
        elif isinstance(annotation, type) and hasattr(annotation, "model_fields"):
            pending.extend(info.annotation for info in annotation.model_fields.values())
        pending.extend(getattr(annotation, "__args__", ()) or ())
    return dict(sorted(found.items()))


_HOOK_KINDS = (
    "validators",
    "field_validators",
    "root_validators",
    "model_validators",
    "field_serializers",
    "model_serializers",
)


def _hooks(model: Any) -> list[str]:
    decorators = getattr(model, "__pydantic_decorators__", None)
    names: list[str] = []
    for kind in _HOOK_KINDS:
        for name, info in sorted(getattr(decorators, kind, {}).items()):
            fields = getattr(getattr(info, "info", None), "fields", ()) or ()
            target = f"({','.join(fields)})" if fields else ""
            names.append(f"{kind.removesuffix('s')}:{name}{target}")
    return names


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


def wire_facts() -> dict[str, Any]:
    """Probe Core's Redis wire layout without a server: keys, entry field, envelope, schema ids."""
    facts: dict[str, Any] = {}
    try:
        codecs = importlib.import_module("market_data_core.events.codecs")
        telemetry = importlib.import_module("market_data_core.telemetry")
        event = telemetry.FeedbackEvent(
            coordinator_id="c", queue_size=1, capacity=2, level="soft", ts=1.0
        )
        envelope = json.loads(codecs.JsonCodec("v1").encode("telemetry.FeedbackEvent", event))
        facts["envelope_keys"] = sorted(envelope)
        facts["meta_keys"] = sorted(envelope.get("meta", {}))
    except Exception as exc:  # recorded, not raised: the diff shows the envelope is gone
        facts["envelope_error"] = f"{type(exc).__name__}: {exc}"[:200]
    facts.update(_redis_facts())
    return facts


def _redis_facts() -> dict[str, Any]:
    try:
        module = importlib.import_module("market_data_core.events.adapters.redis_streams")
        bus = module.RedisStreamsBus("redis://127.0.0.1:1", namespace="{namespace}")
    except Exception as exc:
        return {"redis_bus_error": f"{type(exc).__name__}: {exc}"[:200]}
    facts: dict[str, Any] = {}
    for fact, method in (("stream_key", "_make_key"), ("dlq_key", "_make_dlq_key")):
        try:
            facts[fact] = getattr(bus, method)("{stream}")
        except Exception as exc:
            facts[fact] = f"<unknown: {type(exc).__name__}>"
    source = _source(module)
    facts["entry_field"] = "data" if '"data"' in source or "'data'" in source else "<unknown>"
    facts["schema_id_rule"] = (
        "class path without market_data_core." if "__class__.__module__" in source else "<other>"
    )
    return facts


def _source(module: Any) -> str:
    try:
        return inspect.getsource(module)
    except (OSError, TypeError):
        return ""


def main() -> int:
    """Read the symbol list (JSON array) on stdin and print the surface as JSON."""
    symbols = json.load(sys.stdin)
    json.dump(build_surface(list(symbols)), sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
