"""Say what changed between two JSON documents (Core surfaces, JSON schemas), for a person.

``diff_json(before, after)`` walks both trees and returns one ``Change`` per added, removed or
changed leaf, each with a readable path (``symbols > market_data_core.telemetry:FeedbackEvent >
fields > capacity``). Lists of named items (parameters) are compared by name and by order: a
reordered or inserted parameter moves what positional callers pass, so it is a change too.
``render_changes`` turns them into lines; no change gives one line saying so.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

ChangeKind = Literal["added", "removed", "changed"]
_SEP = " > "
_IGNORED_TOP_LEVEL = frozenset({"core_version", "python"})


@dataclass(frozen=True)
class Change:
    """One difference between two documents at ``path``."""

    kind: ChangeKind
    path: tuple[str, ...]
    before: Any = None
    after: Any = None

    def describe(self) -> str:
        """Return the change as one line: ``+``/``-``/``~``, the path and the values."""
        where = _SEP.join(self.path) or "(document)"
        if self.kind == "added":
            return f"+ {where}: {_short(self.after)}"
        if self.kind == "removed":
            return f"- {where}: {_short(self.before)}"
        return f"~ {where}: {_short(self.before)} -> {_short(self.after)}"


def diff_json(before: Any, after: Any, path: tuple[str, ...] = ()) -> list[Change]:
    """Return every difference between ``before`` and ``after``, depth first, in key order."""
    if isinstance(before, dict) and isinstance(after, dict):
        return _diff_dicts(before, after, path)
    if isinstance(before, list) and isinstance(after, list):
        if _all_scalars(before + after):
            return _diff_sets(before, after, path)
        if _all_named(before) and _all_named(after):
            changes = _diff_order(before, after, path)
            return changes + _diff_dicts(_by_name(before), _by_name(after), path)
    if before != after:
        return [Change("changed", path, before, after)]
    return []


def diff_surfaces(before: dict[str, Any], after: dict[str, Any]) -> list[Change]:
    """Return what changed between two surfaces, ignoring their version stamps."""
    strip = {k: v for k, v in before.items() if k not in _IGNORED_TOP_LEVEL}
    other = {k: v for k, v in after.items() if k not in _IGNORED_TOP_LEVEL}
    return diff_json(strip, other)


def render_changes(changes: list[Change], title: str) -> str:
    """Return a title line and one line per change (or a line saying nothing changed)."""
    if not changes:
        return f"{title}: no change"
    noun = "change" if len(changes) == 1 else "changes"
    lines = [f"{title}: {len(changes)} {noun}"]
    lines.extend(f"  {change.describe()}" for change in changes)
    return "\n".join(lines)


def _diff_dicts(
    before: dict[str, Any], after: dict[str, Any], path: tuple[str, ...]
) -> list[Change]:
    changes: list[Change] = []
    for key in sorted(set(before) | set(after), key=str):
        here = (*path, str(key))
        if key not in after:
            changes.append(Change("removed", here, before=before[key]))
        elif key not in before:
            changes.append(Change("added", here, after=after[key]))
        else:
            changes.extend(diff_json(before[key], after[key], here))
    return changes


def _diff_sets(before: list[Any], after: list[Any], path: tuple[str, ...]) -> list[Change]:
    gone = [item for item in before if item not in after]
    new = [item for item in after if item not in before]
    changes = [Change("removed", (*path, str(item)), before=item) for item in gone]
    changes.extend(Change("added", (*path, str(item)), after=item) for item in new)
    if not changes and before != after:
        changes.append(Change("changed", path, before, after))
    return changes


def _all_scalars(items: list[Any]) -> bool:
    return all(isinstance(item, str | int | float | bool) or item is None for item in items)


def _all_named(items: list[Any]) -> bool:
    """Return whether items are dicts with unique names (parameters, fields), order meaningful."""
    if not items or not all(isinstance(item, dict) and "name" in item for item in items):
        return False
    return len({str(item["name"]) for item in items}) == len(items)


def _diff_order(before: list[Any], after: list[Any], path: tuple[str, ...]) -> list[Change]:
    """Report a change of position: parameters are passed by position, so order is contract."""
    old = [str(item["name"]) for item in before]
    new = [str(item["name"]) for item in after]
    kept_old = [name for name in old if name in new]
    kept_new = [name for name in new if name in old]
    # Reordered, or something inserted before an existing item (which shifts its position).
    if kept_old != kept_new or new[: len(kept_new)] != kept_new:
        return [Change("changed", (*path, "(order)"), old, new)]
    return []


def _by_name(items: list[Any]) -> dict[str, Any]:
    return {str(item["name"]): {k: v for k, v in item.items() if k != "name"} for item in items}


def _short(value: Any, limit: int = 120) -> str:
    text = json.dumps(value, sort_keys=True) if not isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
