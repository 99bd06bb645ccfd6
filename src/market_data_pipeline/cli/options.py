"""Command-line options made from the settings table, so each setting is declared only once.

A command names the settings it takes; ``parameters`` makes the typed parameters typer reads,
each ``Annotated`` with its flag, short flag, metavar, help, default and stage panel, and
``with_parameters`` hands them to a function that takes ``**values``. Only options typed on
the command line count as given (``given_flags``): a config file or ``MDP_`` variable is never
overridden by a flag's default.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from typing import Annotated, Any, TypeVar

import typer

from ..settings_spec import BY_KEY, Setting

F = TypeVar("F", bound=Callable[..., Any])


STAGE = "<stage>"  # a setting's help panel is its stage unless a command puts it elsewhere


def option_info(setting: Setting, *, panel: str | None = STAGE, envvar: bool = False) -> Any:
    """Return the typer option of one setting (``panel`` None: the command's default panel;
    ``envvar``: also read its ``MDP_`` variable, for commands that do not load settings)."""
    flag = setting.flag
    if setting.flag_type is bool:
        flag = f"{flag}/--no-{setting.key.replace('_', '-')}"
    decls = [flag] if setting.short is None else [flag, setting.short]
    help_text = setting.help
    if setting.shown_default is not None:
        help_text += f" \\[default: {setting.shown_default}]"
    return typer.Option(
        *decls,
        metavar=setting.metavar,
        help=help_text,
        rich_help_panel=setting.stage if panel == STAGE else panel,
        envvar=setting.env if envvar else None,
    )


def option(setting: Setting, *, panel: str | None = STAGE) -> Any:
    """Return the ``Annotated`` type of one setting's parameter."""
    info = option_info(setting, panel=panel)
    flag_type: Any = setting.flag_type
    if setting.repeated:
        flag_type = list[flag_type]
    if cli_default(setting) is None:
        flag_type = flag_type | None
    return Annotated[flag_type, info]


def cli_default(setting: Setting) -> Any:
    """The default a flag shows: none where the help text says it in words."""
    if setting.shown_default is not None or setting.repeated:
        return None
    return setting.default


def parameters(keys: Iterable[str], *, panel: str | None = STAGE) -> list[inspect.Parameter]:
    """Return keyword parameters for these settings, named by key."""
    return [
        inspect.Parameter(
            key,
            inspect.Parameter.KEYWORD_ONLY,
            annotation=option(BY_KEY[key], panel=panel),
            default=cli_default(BY_KEY[key]),
        )
        for key in keys
    ]


def context_parameter() -> inspect.Parameter:
    """The ``ctx`` parameter typer fills with the click context."""
    return inspect.Parameter(
        "ctx", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=typer.Context
    )


def with_parameters(func: F, params: list[inspect.Parameter]) -> F:
    """Let typer see ``params`` as ``func``'s parameters (``func`` takes them as keywords)."""
    func.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    func.__annotations__ = {p.name: p.annotation for p in params}
    return func


def given_flags(ctx: typer.Context) -> dict[str, Any]:
    """Return the options typed on the command line (defaults left out), by parameter name."""
    return {
        name: value
        for name, value in ctx.params.items()
        if _source_name(ctx, name) == "COMMANDLINE"
    }


def _source_name(ctx: typer.Context, name: str) -> str:
    # By name: typer releases differ on which click module defines ParameterSource.
    source = ctx.get_parameter_source(name)
    return source.name if source is not None else ""
