"""Check that a class really implements a Core protocol, beyond what ``isinstance`` sees.

``isinstance(obj, Protocol)`` with a runtime-checkable Protocol only checks that the attributes
exist: a synchronous ``apply`` passes it. ``conformance_problems`` also compares each member with
Core's: async where Core's is async (an async generator counts where Core returns an async
iterable), sync where Core's is sync, and parameters that accept every call Core's signature allows.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

_POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)


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


def _is_async(fn: Callable[..., Any]) -> bool:
    return inspect.iscoroutinefunction(fn) or inspect.isasyncgenfunction(fn)


def _method_problems(theirs: Callable[..., Any], ours: Callable[..., Any]) -> list[str]:
    problems: list[str] = []
    if inspect.iscoroutinefunction(theirs) and not _is_async(ours):
        problems.append("Core's is async, ours is synchronous")
    elif inspect.iscoroutinefunction(theirs) and inspect.isasyncgenfunction(ours):
        if "AsyncIter" not in str(inspect.signature(theirs).return_annotation):
            problems.append("ours is an async generator where Core awaits a result")
    elif not _is_async(theirs) and _is_async(ours):
        problems.append("Core's is synchronous, ours is async")
    problems.extend(_parameter_problems(inspect.signature(theirs), inspect.signature(ours)))
    return problems


def _parameter_problems(theirs: inspect.Signature, ours: inspect.Signature) -> list[str]:
    core_params = list(theirs.parameters.values())[1:]  # drop self
    our_params = list(ours.parameters.values())[1:]
    our_by_name = {p.name: p for p in our_params}
    our_positional = [p for p in our_params if p.kind in _POSITIONAL]
    takes_args = any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in our_params)
    takes_kwargs = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in our_params)
    problems: list[str] = []
    for index, param in enumerate(p for p in core_params if p.kind in _POSITIONAL):
        if index >= len(our_positional) and not takes_args:
            problems.append(f"does not accept Core's positional parameter {param.name!r}")
        elif param.default is not param.empty:
            mine = our_by_name.get(param.name)
            if mine is None and not takes_kwargs:
                problems.append(f"does not accept Core's keyword {param.name!r}")
            elif mine is not None and mine.default is mine.empty:
                problems.append(f"{param.name!r} is optional in Core but required in ours")
    extra_required = [
        p.name
        for p in our_params[len([c for c in core_params if c.kind in _POSITIONAL]) :]
        if p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]
    if extra_required:
        problems.append(f"requires parameters Core never passes: {', '.join(extra_required)}")
    return problems
