"""Check that a class really implements a Core protocol, beyond what ``isinstance`` sees.

``isinstance(obj, Protocol)`` with a runtime-checkable Protocol only checks that the attributes
exist: a synchronous ``apply`` passes it. ``conformance_problems`` also compares each member with
Core's by how a caller uses it (``surface.call_kind``): awaited where Core's is awaited, iterated
with ``async for`` where Core's returns an async iterator (an async generator and a ``def``
returning an ``AsyncIterator`` are both valid there; an ``async def`` declared to return an
async iterable, Core's stub style, accepts either reading), synchronous where Core's is;
parameters (positional and keyword-only) that accept every
call Core's signature allows without requiring more, the same defaults where both declare one,
and the same return annotation where Core declares one (``None`` against ``None``).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from .surface import call_kind

_P = inspect.Parameter
_POSITIONAL = (_P.POSITIONAL_ONLY, _P.POSITIONAL_OR_KEYWORD)


def protocol_members(protocol: type) -> list[str]:
    """Return the member names a Core protocol requires, sorted."""
    attrs = getattr(protocol, "__protocol_attrs__", None)
    if attrs is None:  # Python 3.11 computes them on demand
        from typing import _get_protocol_attrs  # type: ignore[attr-defined]

        attrs = _get_protocol_attrs(protocol)
    return sorted(attrs)


def conformance_problems(cls: type, protocol: type) -> list[str]:
    """Return every way ``cls`` fails to match ``protocol`` (empty when it conforms)."""
    problems: list[str] = []
    for name in protocol_members(protocol):
        theirs = inspect.getattr_static(protocol, name, None)
        ours = inspect.getattr_static(cls, name, None)
        if ours is None:
            problems.append(f"{name}: missing")
            continue
        if not callable(theirs):
            continue
        if isinstance(ours, property) or not callable(ours):
            problems.append(f"{name}: Core's is a method, ours is not callable")
            continue
        problems.extend(f"{name}: {p}" for p in _method_problems(_unwrap(theirs), _unwrap(ours)))
    return problems


def _unwrap(member: Any) -> Callable[..., Any]:
    return member.__func__ if isinstance(member, staticmethod | classmethod) else member


# Core's call kind -> the call kinds of ours that a caller following Core's can use.
_COMPATIBLE_CALLS = {
    "await": frozenset({"await", "either"}),
    "async-for": frozenset({"async-for", "either"}),
    "either": frozenset({"await", "async-for", "either"}),
    "call": frozenset({"call"}),
}
_DESCRIBED = {
    "await": "awaited (async def)",
    "async-for": "an async iterator",
    "either": "async",
    "call": "synchronous",
}


def _method_problems(theirs: Callable[..., Any], ours: Callable[..., Any]) -> list[str]:
    problems: list[str] = []
    core_call, our_call = call_kind(theirs), call_kind(ours)
    if our_call not in _COMPATIBLE_CALLS[core_call]:
        problems.append(f"Core's is {_DESCRIBED[core_call]}, ours is {_DESCRIBED[our_call]}")
    problems.extend(_parameter_problems(inspect.signature(theirs), inspect.signature(ours)))
    return problems


def _parameter_problems(theirs: inspect.Signature, ours: inspect.Signature) -> list[str]:
    core_params = list(theirs.parameters.values())[1:]  # drop self
    our_params = list(ours.parameters.values())[1:]
    problems = _positional_problems(core_params, our_params)
    problems += _keyword_only_problems(core_params, our_params)
    problems += _default_problems(core_params, our_params)
    problems += _return_problems(theirs.return_annotation, ours.return_annotation)
    return problems


def _accepts(name: str, our_params: list[inspect.Parameter]) -> inspect.Parameter | None:
    """Return our parameter that takes keyword ``name`` (None if only ``**kwargs`` could)."""
    mine = next((p for p in our_params if p.name == name), None)
    return mine if mine is not None and mine.kind is not _P.POSITIONAL_ONLY else None


def _positional_problems(
    core_params: list[inspect.Parameter], our_params: list[inspect.Parameter]
) -> list[str]:
    core_positional = [p for p in core_params if p.kind in _POSITIONAL]
    our_positional = [p for p in our_params if p.kind in _POSITIONAL]
    takes_args = any(p.kind is _P.VAR_POSITIONAL for p in our_params)
    takes_kwargs = any(p.kind is _P.VAR_KEYWORD for p in our_params)
    problems: list[str] = []
    for index, param in enumerate(core_positional):
        if index >= len(our_positional) and not takes_args:
            problems.append(f"does not accept Core's positional parameter {param.name!r}")
        elif param.default is not param.empty:
            mine = _accepts(param.name, our_params)
            if mine is None and not takes_kwargs:
                problems.append(f"does not accept Core's keyword {param.name!r}")
            elif mine is not None and mine.default is mine.empty:
                problems.append(f"{param.name!r} is optional in Core but required in ours")
    extra_required = [
        p.name for p in our_positional[len(core_positional) :] if p.default is p.empty
    ]
    if extra_required:
        problems.append(f"requires parameters Core never passes: {', '.join(extra_required)}")
    return problems


def _keyword_only_problems(
    core_params: list[inspect.Parameter], our_params: list[inspect.Parameter]
) -> list[str]:
    takes_kwargs = any(p.kind is _P.VAR_KEYWORD for p in our_params)
    core_names = {p.name for p in core_params}
    problems: list[str] = []
    for param in (p for p in core_params if p.kind is _P.KEYWORD_ONLY):
        mine = _accepts(param.name, our_params)
        required = "required " if param.default is param.empty else ""
        if mine is None and not takes_kwargs:
            problems.append(
                f"does not accept Core's {required}keyword-only parameter {param.name!r}"
            )
        elif mine is not None and not required and mine.default is mine.empty:
            problems.append(f"{param.name!r} is optional in Core but required in ours")
    extra_required = [
        p.name
        for p in our_params
        if p.kind is _P.KEYWORD_ONLY and p.name not in core_names and p.default is p.empty
    ]
    if extra_required:
        problems.append(
            f"requires keyword-only parameters Core never passes: {', '.join(extra_required)}"
        )
    return problems


def _default_problems(
    core_params: list[inspect.Parameter], our_params: list[inspect.Parameter]
) -> list[str]:
    ours_by_name = {p.name: p for p in our_params}
    problems: list[str] = []
    for param in core_params:
        mine = ours_by_name.get(param.name)
        if param.default is param.empty or mine is None or mine.default is mine.empty:
            continue
        if not _same_default(param.default, mine.default):
            problems.append(
                f"default of {param.name!r} is {mine.default!r} in ours, {param.default!r} in Core"
            )
    return problems


def _same_default(theirs: Any, ours: Any) -> bool:
    try:
        return bool(type(theirs) is type(ours) and theirs == ours)
    except Exception:  # an exotic default without a usable ==: compare what a person would read
        return repr(theirs) == repr(ours)


_SCALARS = frozenset({"bool", "int", "float", "str", "bytes"})


def _return_problems(theirs: Any, ours: Any) -> list[str]:
    """Compare return annotations where Core declares one: None against None, scalars by name."""
    if theirs is inspect.Signature.empty or ours is inspect.Signature.empty:
        return []
    core_name, our_name = _annotation_name(theirs), _annotation_name(ours)
    if (core_name == "None") != (our_name == "None"):
        return [f"returns {our_name} where Core's returns {core_name}"]
    if core_name in _SCALARS and our_name in _SCALARS and core_name != our_name:
        return [f"returns {our_name} where Core's returns {core_name}"]
    return []


def _annotation_name(annotation: Any) -> str:
    if annotation is None or annotation is type(None):
        return "None"
    if isinstance(annotation, type):
        return annotation.__name__
    return str(annotation).strip().strip("'\"")
