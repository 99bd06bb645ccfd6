"""Classification of Core changes: breaking, additive or cosmetic, on real Core models edited."""

from __future__ import annotations

from enum import Enum
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict, Field, field_validator

from market_data_contracts.compat import accepts, compare_models, compare_surfaces, worst
from market_data_contracts.surface import describe, model_contract


class Level(str, Enum):  # noqa: UP042 (as Core writes it)
    ok = "ok"
    hard = "hard"


class Event(BaseModel):
    model_config = ConfigDict(frozen=True)
    coordinator_id: str = Field(..., description="who")
    queue_size: int = Field(..., ge=0)
    level: Level
    source: str = "store"


def _severity(model: type[BaseModel]) -> str | None:
    return worst(compare_models("Event", model_contract(Event), model_contract(model)))


def test_same_model_has_no_finding() -> None:
    assert compare_models("Event", model_contract(Event), model_contract(Event)) == []


def test_description_and_title_edits_are_not_in_the_contract() -> None:
    class Edited(BaseModel):
        model_config = ConfigDict(frozen=True, title="Other")
        coordinator_id: str = Field(..., description="the coordinator emitting feedback")
        queue_size: int = Field(..., ge=0, title="Queue")
        level: Level
        source: str = "store"

    assert _severity(Edited) is None


def test_harmless_edits_are_additive() -> None:
    class Optional(Event):
        note: str | None = None

    class Widened(BaseModel):
        model_config = ConfigDict(frozen=True)
        coordinator_id: str
        queue_size: int | float = Field(..., ge=0)
        level: Level
        source: str = "store"

    class Default(BaseModel):
        model_config = ConfigDict(frozen=True)
        coordinator_id: str
        queue_size: int = Field(..., ge=0)
        level: Level
        source: str = "pipeline"

    class Relaxed(BaseModel):
        model_config = ConfigDict(frozen=True)
        coordinator_id: str
        queue_size: int = Field(..., ge=-10)
        level: Level
        source: str = "store"

    class EnumToStr(BaseModel):
        model_config = ConfigDict(frozen=True)
        coordinator_id: str
        queue_size: int = Field(..., ge=0)
        level: str
        source: str = "store"

    harmless = (Optional, Widened, Default, Relaxed, EnumToStr)
    assert [_severity(m) for m in harmless] == ["additive"] * 5


class Level3(str, Enum):  # noqa: UP042
    ok = "ok"
    hard = "hard"
    panic = "panic"


class PlainLevel(Enum):
    ok = "ok"
    hard = "hard"


def _variant(**changes: Any) -> type[BaseModel]:
    fields: dict[str, Any] = {
        "coordinator_id": (str, ...),
        "queue_size": (int, Field(..., ge=0)),
        "level": (Level, ...),
        "source": (str, "store"),
    }
    fields.update(changes)
    fields = {k: v for k, v in fields.items() if v is not None}
    from pydantic import create_model

    return create_model("Event", __config__=ConfigDict(frozen=True), **fields)


@pytest.mark.parametrize(
    "changes",
    [
        {"queue_size": None, "queue_len": (int, Field(..., ge=0))},  # renamed
        {"source": None},  # removed
        {"queue_size": (int, Field(..., gt=0))},  # tightened
        {"queue_size": (int, Field(..., ge=0, le=100))},  # bounded
        {"coordinator_id": (int, ...)},  # type changed
        {"source": (str, ...)},  # now required
        {"level": (Level3, ...)},  # new enum member
        {"level": (PlainLevel, ...)},  # base class changed
        {"extra": (str, ...)},  # new required field
    ],
    ids=[
        "renamed",
        "removed",
        "tightened",
        "bounded",
        "retyped",
        "required",
        "enum member",
        "enum base",
        "new required",
    ],
)
def test_breaking_edits_are_breaking(changes: dict[str, Any]) -> None:
    assert _severity(_variant(**changes)) == "breaking"


def test_validators_and_forbid_are_breaking() -> None:
    class Validated(Event):
        @field_validator("coordinator_id")
        @classmethod
        def not_empty(cls, value: str) -> str:
            return value

    class Strict(Event):
        model_config = ConfigDict(frozen=True, extra="forbid")

    class Thawed(Event):
        model_config = ConfigDict(frozen=False)

    assert [_severity(m) for m in (Validated, Strict, Thawed)] == ["breaking"] * 3


def test_acceptance_of_json_schemas() -> None:
    assert accepts({"type": "number"}, {"type": "integer"})
    assert not accepts({"type": "integer"}, {"type": "number"})
    assert accepts({"anyOf": [{"type": "integer"}, {"type": "null"}]}, {"type": "integer"})
    assert not accepts(
        {"type": "integer", "exclusiveMinimum": 0}, {"type": "integer", "minimum": 0}
    )
    assert accepts({"type": "integer", "minimum": 0}, {"type": "integer", "exclusiveMinimum": 0})
    assert not accepts({"enum": ["a", "b", "c"]}, {"enum": ["a", "b"]})
    assert accepts({"type": "string"}, {"type": "string", "maxLength": 3})


def _surface(**symbols: Any) -> dict[str, Any]:
    return {"symbols": symbols, "exports": {}, "wire": {"stream_key": "{namespace}:{stream}"}}


def test_surface_changes_are_classified() -> None:
    class Proto:
        async def stream(self) -> Any: ...

    before = _surface(E=describe(Event))
    renamed_doc = describe(Event) | {"schema_hash": "other"}
    assert [f.severity for f in compare_surfaces(before, _surface(E=renamed_doc))] == ["cosmetic"]
    gone = compare_surfaces(before, _surface())
    assert [(f.severity, f.message) for f in gone] == [("breaking", "gone (moved or removed)")]
    moved_key = _surface(E=describe(Event))
    moved_key["wire"]["stream_key"] = "{namespace}.{stream}"
    assert worst(compare_surfaces(before, moved_key)) == "breaking"


def _method(call: str, returns: str = "None", *params: str) -> dict[str, Any]:
    names = ["self", *params]
    return {
        "call": call,
        "returns": returns,
        "params": [{"name": n, "kind": "positional_or_keyword", "default": None} for n in names],
    }


@pytest.mark.parametrize(
    ("before", "after", "severity"),
    [
        (
            _method("either", "AsyncIterable[T]"),
            _method("async-for", "AsyncIterator[T]"),
            "cosmetic",
        ),
        (_method("await", "None", "adj"), _method("call", "None", "adj"), "breaking"),
        (_method("await", "None", "adj"), _method("await", "None", "adj", "strict"), "breaking"),
        (_method("await", "None"), _method("await", "bool"), "breaking"),
    ],
    ids=["async generator declared", "async to sync", "new parameter", "returns"],
)
def test_method_changes(before: dict[str, Any], after: dict[str, Any], severity: str) -> None:
    old = _surface(P={"kind": "protocol", "methods": {"m": before}})
    new = _surface(P={"kind": "protocol", "methods": {"m": after}})
    assert worst(compare_surfaces(old, new)) == severity
