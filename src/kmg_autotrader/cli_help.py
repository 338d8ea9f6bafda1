"""The ``--help`` a user reads: plain value names and whole sentences.

typer prints an option's Python type (``<bool>`` for a flag, ``<str>``) and keeps a docstring's
hard line breaks, so a paragraph shows cut at the source's line ends. :func:`polish` walks the
click command tree once, before it runs: flags get no value name, other options a click-style
one (TEXT, INTEGER, NUMBER, PATH or their choices), and each help paragraph becomes one line
that the terminal wraps.
"""

from __future__ import annotations

import inspect
from typing import Any

# typer (0.29+) builds options of its own copy of click and describes their values by the
# Python annotation (``type_descriptor``): these are the names a user reads instead
_TYPE_NAMES = {
    "int": "INTEGER",
    "float": "NUMBER",
    "bool": "BOOLEAN",
    "str": "TEXT",
    "Path": "PATH",
    "datetime": "DATETIME",
}


def unwrap(text: str | None) -> str | None:
    """``text`` with each paragraph on one line (a paragraph starting with ``\\b`` is kept)."""
    if not text:
        return text
    paragraphs = inspect.cleandoc(text).split("\n\n")
    return "\n\n".join(p if p.startswith("\b") else " ".join(p.split()) for p in paragraphs)


def value_name(param: Any) -> str:
    """What stands for an option's value in the help ('' for a flag)."""
    if getattr(param, "is_flag", False) or getattr(param, "count", False):
        return ""
    desc = getattr(param, "type_descriptor", None)
    if desc is None:  # a plain click option
        return str(getattr(param.type, "name", "text")).upper()
    if desc.is_choice:
        return "|".join(str(getattr(c, "value", c)) for c in desc.choices or ())
    if desc.is_path:
        return "PATH"
    if desc.is_ranged:
        return _TYPE_NAMES.get(str(desc.ranged_type_name), "NUMBER")
    bare = str(param.bare_type())
    if bare.startswith("list[") and bare.endswith("]"):
        bare = bare[5:-1]  # a repeatable option: each use takes one value
    return _TYPE_NAMES.get(bare, "TEXT")


def polish(command: Any) -> Any:
    """Fix the help of a click ``command`` and every subcommand in place; returns it."""
    command.help = unwrap(command.help)
    command.short_help = unwrap(command.short_help)
    for param in command.params:
        if getattr(param, "param_type_name", "") == "option":
            if param.metavar is None:
                param.metavar = value_name(param)
            param.help = unwrap(param.help)
        elif getattr(param, "param_type_name", "") == "argument":
            if param.metavar is None:
                param.metavar = str(param.name).upper()
            # typer shows an argument's type beside it as <path>: the plain name instead
            param.display_type_rich = lambda ctx, name=value_name(param): name
    help_option = command.get_help_option

    def get_help_option(ctx: Any) -> Any:
        # --help is made when the help is shown, after this walk: name it there
        option = help_option(ctx)
        if option is not None and option.metavar is None:
            option.metavar = ""
        return option

    command.get_help_option = get_help_option
    for sub in getattr(command, "commands", {}).values():
        polish(sub)
    return command
