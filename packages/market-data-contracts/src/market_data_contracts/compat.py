"""Classify each change in Core's surface as breaking, additive or cosmetic for this pipeline.

    breaking  the pipeline's behaviour would break: a field removed or renamed, a new required
              field, a type narrowed or a constraint tightened, an enum value changed or added
              (the pipeline would receive a member it does not know), an enum's base class
              changed, a validator or serializer added, ``extra="forbid"``, frozen-ness changed,
              a protocol method added or removed, sync/async or parameters changed, a module or
              symbol gone, the wire layout (keys, entry field, envelope) changed
    additive  compatible, worth a notice: an optional field added, a type widened, a constraint
              relaxed, a default changed, a validator removed, a top-level export changed
    cosmetic  nothing the pipeline can observe: a description or title, a return annotation
              that still means an async iterator

Inputs are the JSON surfaces ``surface.py`` writes (``model_contract`` for models). Standard
library only, so the contract suite can use it inside any environment.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

Severity = Literal["breaking", "additive", "cosmetic"]
SEVERITIES: tuple[Severity, ...] = ("breaking", "additive", "cosmetic")
_MISSING = {"kind": "value", "repr": "<missing>"}


@dataclass(frozen=True)
class Finding:
    """One classified change: how serious, where (``FeedbackEvent.level``) and what."""

    severity: Severity
    where: str
    message: str

    def describe(self) -> str:
        """Return the finding as one line."""
        return f"{self.severity}: {self.where}: {self.message}"

    def to_json(self) -> dict[str, str]:
        """Return the finding as JSON data."""
        return {"severity": self.severity, "where": self.where, "message": self.message}


def worst(findings: list[Finding]) -> Severity | None:
    """Return the most serious severity among ``findings`` (None when there is none)."""
    present = {f.severity for f in findings}
    return next((s for s in SEVERITIES if s in present), None)


# -- models ------------------------------------------------------------------------------------


def compare_models(name: str, before: dict[str, Any], after: dict[str, Any]) -> list[Finding]:
    """Return the classified differences between two ``model_contract`` documents."""
    if "error" in before or "error" in after:
        if before != after:
            return [Finding("breaking", name, f"{before.get('error')} -> {after.get('error')}")]
        return []
    out = _config_findings(name, before, after)
    out += _hook_findings(name, before.get("hooks", []), after.get("hooks", []))
    out += _enum_findings(name, before.get("enums", {}), after.get("enums", {}))
    old_fields = _inline_enums(before.get("fields", {}), before.get("defs", {}), before)
    new_fields = _inline_enums(after.get("fields", {}), after.get("defs", {}), after)
    out += compare_fields(name, old_fields, new_fields)
    out += _def_findings(name, before.get("defs", {}), after.get("defs", {}))
    return out


_REF = "#/$defs/"


def _inline_enums(
    fields: dict[str, Any], defs: dict[str, Any], contract: dict[str, Any]
) -> dict[str, Any]:
    """Replace references to enum-like ``$defs`` with their schema (and the enum's base classes),
    so an enum field that becomes a plain ``str`` compares as widened while a changed base class
    still differs (nested models stay references, compared as defs)."""
    enums = contract.get("enums", {})

    def inline(node: Any) -> Any:
        if isinstance(node, list):
            return [inline(item) for item in node]
        if not isinstance(node, dict):
            return node
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(_REF) and len(node) == 1:
            target = defs.get(ref.removeprefix(_REF), {})
            if target.get("kind") == "schema":
                bases = enums.get(ref.removeprefix(_REF), {}).get("bases")
                return {**target["schema"], **({"x-enum-bases": bases} if bases else {})}
        return {key: inline(value) for key, value in node.items()}

    return {name: {**f, "schema": inline(f.get("schema", {}))} for name, f in fields.items()}


def _config_findings(name: str, before: dict[str, Any], after: dict[str, Any]) -> list[Finding]:
    out: list[Finding] = []
    if before.get("frozen") != after.get("frozen"):
        out.append(
            Finding("breaking", name, f"frozen {before.get('frozen')} -> {after.get('frozen')}")
        )
    old_extra, new_extra = before.get("extra"), after.get("extra")
    if old_extra != new_extra:
        severity: Severity = "breaking" if new_extra == "forbid" else "additive"
        out.append(Finding(severity, name, f"extra={old_extra!r} -> extra={new_extra!r}"))
    return out


def _hook_findings(name: str, before: list[str], after: list[str]) -> list[Finding]:
    out: list[Finding] = []
    for hook in sorted(set(after) - set(before)):
        out.append(
            Finding("breaking", name, f"Core now runs {hook}: it may reject or reshape data")
        )
    for hook in sorted(set(before) - set(after)):
        severity: Severity = "breaking" if "serializer" in hook else "additive"
        out.append(Finding(severity, name, f"{hook} removed"))
    return out


def _enum_findings(name: str, before: dict[str, Any], after: dict[str, Any]) -> list[Finding]:
    out: list[Finding] = []
    for enum_name in sorted(set(before) & set(after)):
        out += compare_enums(f"{name}.{enum_name}", before[enum_name], after[enum_name])
    return out


def compare_enums(where: str, before: dict[str, Any], after: dict[str, Any]) -> list[Finding]:
    """Classify enum changes: any value added or removed and any base change is breaking."""
    out: list[Finding] = []
    old, new = set(before.get("values", ())), set(after.get("values", ()))
    if new - old:
        out.append(Finding("breaking", where, f"new member(s) {sorted(new - old)}"))
    if old - new:
        out.append(Finding("breaking", where, f"member(s) {sorted(old - new)} removed"))
    if before.get("bases") != after.get("bases"):
        out.append(
            Finding("breaking", where, f"bases {before.get('bases')} -> {after.get('bases')}")
        )
    return out


def _def_findings(name: str, before: dict[str, Any], after: dict[str, Any]) -> list[Finding]:
    out: list[Finding] = []
    for def_name in sorted(set(before) & set(after)):
        old, new = before[def_name], after[def_name]
        where = f"{name}>{def_name}"
        if old.get("kind") == new.get("kind") == "object":
            out += compare_fields(where, old.get("fields", {}), new.get("fields", {}))
        elif old != new:
            out += _schema_finding(where, old.get("schema", old), new.get("schema", new))
    return out


def compare_fields(name: str, before: dict[str, Any], after: dict[str, Any]) -> list[Finding]:
    """Classify field changes of one model (or nested model)."""
    out: list[Finding] = []
    for field in sorted(set(before) | set(after)):
        where = f"{name}.{field}"
        if field not in after:
            out.append(Finding("breaking", where, "field removed (or renamed)"))
        elif field not in before:
            required = after[field].get("required")
            out.append(
                Finding("breaking", where, "new required field")
                if required
                else Finding("additive", where, "new optional field")
            )
        else:
            out += _field_findings(where, before[field], after[field])
    return out


def _field_findings(where: str, before: dict[str, Any], after: dict[str, Any]) -> list[Finding]:
    out: list[Finding] = []
    if before.get("required") != after.get("required"):
        out.append(
            Finding("breaking", where, "now required")
            if after.get("required")
            else Finding("additive", where, "now optional")
        )
    if "default" in before and "default" in after and before["default"] != after["default"]:
        message = f"default {_short(before['default'])} -> {_short(after['default'])}"
        out.append(Finding("additive", where, message))
    out += _schema_finding(where, before.get("schema", {}), after.get("schema", {}))
    return out


def _schema_finding(where: str, before: Any, after: Any) -> list[Finding]:
    if before == after:
        return []
    change = f"{_short(before)} -> {_short(after)}"
    if accepts(after, before):
        return [Finding("additive", where, f"widened: {change}")]
    return [Finding("breaking", where, f"narrowed or changed: {change}")]


# -- JSON schema acceptance --------------------------------------------------------------------

_LOWER = (("minimum", False), ("exclusiveMinimum", True))
_UPPER = (("maximum", False), ("exclusiveMaximum", True))
_AT_LEAST = ("maxLength", "maxItems", "maxProperties")  # new must be >= old (or absent)
_AT_MOST = ("minLength", "minItems", "minProperties")  # new must be <= old (or absent)
_HANDLED = frozenset(
    {"type", "anyOf", "items", "additionalProperties", *_AT_LEAST, *_AT_MOST}
    | {key for key, _ in _LOWER + _UPPER}
)


def accepts(new: Any, old: Any) -> bool:
    """Return whether schema ``new`` admits every value schema ``old`` admits (conservatively)."""
    if new == old or new == {}:
        return True
    if not isinstance(new, dict) or not isinstance(old, dict):
        return False
    olds, news = _alternatives(old), _alternatives(new)
    if len(olds) > 1 or len(news) > 1:
        return all(any(_single_accepts(n, o) for n in news) for o in olds)
    return _single_accepts(news[0], olds[0])


# pydantic writes a union's constraints under their Python names beside ``anyOf``.
_PY_NAMES = {"ge": "minimum", "gt": "exclusiveMinimum", "le": "maximum", "lt": "exclusiveMaximum"}


def _alternatives(schema: dict[str, Any]) -> list[dict[str, Any]]:
    """Split ``anyOf`` into alternatives, each carrying the constraints written beside it."""
    siblings = {_PY_NAMES.get(k, k): v for k, v in schema.items() if k != "anyOf"}
    if "anyOf" not in schema:
        return [siblings]
    return [{**alt, **siblings} if isinstance(alt, dict) else alt for alt in schema["anyOf"]]


def _single_accepts(new: dict[str, Any], old: dict[str, Any]) -> bool:
    if not _type_accepts(new.get("type"), old.get("type")):
        return False
    if not _bound_ok(_bound(new, _LOWER), _bound(old, _LOWER), lower=True):
        return False
    if not _bound_ok(_bound(new, _UPPER), _bound(old, _UPPER), lower=False):
        return False
    for key in _AT_LEAST:
        if key in new and (key not in old or new[key] < old[key]):
            return False
    for key in _AT_MOST:
        if key in new and (key not in old or new[key] > old[key]):
            return False
    for key in ("items", "additionalProperties"):
        if key not in new or new[key] is True or new[key] == {}:
            continue
        if key not in old or not accepts(new[key], old[key]):
            return False
    # Anything else (enum, const, $ref, pattern, format, ...) must be kept as it was or dropped.
    return all(old.get(key) == value for key, value in new.items() if key not in _HANDLED)


def _type_accepts(new: Any, old: Any) -> bool:
    if new is None or new == old:
        return True
    return bool(old == "integer" and new == "number")


def _bound(schema: dict[str, Any], keys: tuple[tuple[str, bool], ...]) -> tuple[float, bool] | None:
    found = [(float(schema[key]), exclusive) for key, exclusive in keys if key in schema]
    return found[0] if found else None


def _bound_ok(
    new: tuple[float, bool] | None, old: tuple[float, bool] | None, *, lower: bool
) -> bool:
    if new is None:
        return True
    if old is None:
        return False
    if new[0] != old[0]:
        return new[0] < old[0] if lower else new[0] > old[0]
    return not new[1] or old[1]  # same number: exclusive may only stay exclusive


# -- surfaces ----------------------------------------------------------------------------------


def compare_surfaces(before: dict[str, Any], after: dict[str, Any]) -> list[Finding]:
    """Return the classified differences between two Core surfaces."""
    out: list[Finding] = []
    old_symbols, new_symbols = before.get("symbols", {}), after.get("symbols", {})
    for symbol in sorted(set(old_symbols) | set(new_symbols)):
        old = old_symbols.get(symbol, _MISSING)
        new = new_symbols.get(symbol, _MISSING)
        out += compare_symbol(symbol, old, new)
    out += _mapping_findings(
        "exports", before.get("exports", {}), after.get("exports", {}), "additive"
    )
    out += _mapping_findings("wire", before.get("wire", {}), after.get("wire", {}), "breaking")
    return out


def compare_symbol(symbol: str, before: dict[str, Any], after: dict[str, Any]) -> list[Finding]:
    """Classify the change of one symbol's description."""
    if before == after:
        return []
    if after == _MISSING:
        return [Finding("breaking", symbol, "gone (moved or removed)")]
    if before == _MISSING:
        return [Finding("additive", symbol, "now present")]
    if before.get("kind") != after.get("kind"):
        return [Finding("breaking", symbol, f"{before.get('kind')} -> {after.get('kind')}")]
    kind = before.get("kind")
    if kind == "model":
        return _model_symbol(symbol, before, after)
    if kind == "enum":
        return compare_enums(symbol, before, after)
    if kind in ("protocol", "class"):
        return _methods(symbol, before.get("methods", {}), after.get("methods", {}), kind)
    if kind == "function":
        return compare_signatures(symbol, before, after)
    return [Finding("breaking", symbol, f"{_short(before)} -> {_short(after)}")]


def _model_symbol(symbol: str, before: dict[str, Any], after: dict[str, Any]) -> list[Finding]:
    if "contract" not in before or "contract" not in after:  # a surface from an older tool
        return [Finding("breaking", symbol, "model changed (no contract recorded to compare)")]
    found = compare_models(symbol, before["contract"], after["contract"])
    if not found and before.get("schema_hash") != after.get("schema_hash"):
        found.append(Finding("cosmetic", symbol, "description or title changed"))
    return found


def _methods(
    symbol: str, before: dict[str, Any], after: dict[str, Any], kind: str
) -> list[Finding]:
    out: list[Finding] = []
    for name in sorted(set(before) | set(after)):
        where = f"{symbol}.{name}"
        if name not in after:
            out.append(Finding("breaking", where, "method removed"))
        elif name not in before:
            severity: Severity = "breaking" if kind == "protocol" else "additive"
            out.append(Finding(severity, where, "method added"))
        else:
            out += compare_signatures(where, before[name], after[name])
    return out


_ITERATING = frozenset({"either", "async-for"})


def compare_signatures(where: str, before: dict[str, Any], after: dict[str, Any]) -> list[Finding]:
    """Classify a method's change: how it is called, its parameters, its return annotation."""
    out: list[Finding] = []
    old_call = before.get("call", "await" if before.get("async") else "call")
    new_call = after.get("call", "await" if after.get("async") else "call")
    if old_call != new_call and {old_call, new_call} <= _ITERATING:
        out.append(Finding("cosmetic", where, f"declared {old_call} -> {new_call}: same use"))
    elif old_call != new_call:
        out.append(Finding("breaking", where, f"{_calling(old_call)} -> {_calling(new_call)}"))
    out += _param_findings(where, before.get("params", []), after.get("params", []))
    old_ret, new_ret = before.get("returns"), after.get("returns")
    if old_ret != new_ret:
        if (old_ret == "None") != (new_ret == "None"):
            out.append(Finding("breaking", where, f"returns {old_ret} -> {new_ret}"))
        elif {old_call, new_call} <= _ITERATING:
            out.append(Finding("cosmetic", where, f"returns {old_ret} -> {new_ret}"))
        else:
            out.append(Finding("additive", where, f"returns {old_ret} -> {new_ret}"))
    return out


def _calling(call: str) -> str:
    return {
        "await": "async (awaited)",
        "async-for": "an async iterator",
        "either": "async (awaited or iterated)",
        "call": "synchronous",
    }.get(call, call)


def _param_findings(where: str, before: list[Any], after: list[Any]) -> list[Finding]:
    def shape(params: list[Any]) -> list[tuple[Any, ...]]:
        return [(p.get("name"), p.get("kind"), p.get("default")) for p in params]

    if shape(before) != shape(after):
        return [Finding("breaking", where, f"parameters {_params(before)} -> {_params(after)}")]
    if [p.get("annotation") for p in before] != [p.get("annotation") for p in after]:
        return [Finding("additive", where, "parameter annotations changed")]
    return []


def _params(params: list[Any]) -> str:
    parts = []
    for p in params:
        text = str(p.get("name"))
        if p.get("kind") == "keyword_only":
            text = "*, " + text
        if p.get("default") is not None:
            text += f"={p['default']}"
        parts.append(text)
    return "(" + ", ".join(parts) + ")"


def _mapping_findings(
    name: str, before: dict[str, Any], after: dict[str, Any], severity: Severity
) -> list[Finding]:
    out: list[Finding] = []
    for key in sorted(set(before) | set(after)):
        if before.get(key) != after.get(key):
            message = f"{_short(before.get(key))} -> {_short(after.get(key))}"
            out.append(Finding(severity, f"{name}.{key}", message))
    return out


def render_findings(findings: list[Finding], title: str) -> str:
    """Return a title with the count per severity, then one line per finding, worst first."""
    if not findings:
        return f"{title}: no change"
    counts = ", ".join(
        f"{sum(f.severity == s for f in findings)} {s}"
        for s in SEVERITIES
        if any(f.severity == s for f in findings)
    )
    lines = [f"{title}: {counts}"]
    ordered = sorted(findings, key=lambda f: SEVERITIES.index(f.severity))
    lines.extend(f"  {f.describe()}" for f in ordered)
    return "\n".join(lines)


def _short(value: Any, limit: int = 120) -> str:
    text = json.dumps(value, sort_keys=True) if not isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
