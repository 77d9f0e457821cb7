"""`clinreason` command line (typer + rich): the root app, one module per group of commands.

    common.py      consoles, exit codes, input loading, error reporting, index-build progress
    assess.py      assess, signoff, show, samples, protocols
    evaluation.py  eval, compare
    admin.py       serve, keys create|list|revoke, db upgrade|current
    mcp.py         mcp (the MCP server over stdio; imports the SDK only when run)
    kb.py          kb build|search|show|eval|misses|agreement

A command's module is imported when the command is looked up (`clinreason assess` imports
assess.py, not kb.py or admin.py); `clinreason --help` imports them all to list their help.
Importing this package loads typer only; each command imports the pipeline, index, store or
server it needs when it runs.
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from importlib import import_module
from typing import Any

import typer
from typer.core import TyperGroup
from typer.main import get_command_from_info, get_group_from_info
from typer.models import CommandInfo, TyperInfo

# Command name -> "module:attribute" under clinreason.cli: a command function, or a typer.Typer
# for a group of commands. This order is the order `clinreason --help` lists them.
COMMANDS: dict[str, str] = {
    "assess": "assess:assess_cmd",
    "signoff": "assess:signoff_cmd",
    "show": "assess:show_cmd",
    "serve": "admin:serve",
    "mcp": "mcp:mcp_cmd",
    "eval": "evaluation:eval_cmd",
    "compare": "evaluation:compare_cmd",
    "samples": "assess:samples_cmd",
    "protocols": "assess:protocols_cmd",
    "kb": "kb:app",
    "keys": "admin:keys_app",
    "db": "admin:db_app",
}


class _LazyCommands(MutableMapping[str, Any]):
    """The root group's commands: every name is known up front, a command is built when first
    looked up. Listing names (typer's "did you mean" suggestions) imports nothing."""

    def __init__(self, specs: dict[str, str]):
        self._specs: dict[str, str | None] = dict(specs)
        self._built: dict[str, Any] = {}

    def __getitem__(self, name: str) -> Any:
        if name not in self._built:
            spec = self._specs.get(name)
            if spec is None:
                raise KeyError(name)
            self._built[name] = _build(name, spec)
        return self._built[name]

    def __setitem__(self, name: str, command: Any) -> None:
        self._specs.setdefault(name, None)
        self._built[name] = command

    def __delitem__(self, name: str) -> None:
        del self._specs[name]
        self._built.pop(name, None)

    def __iter__(self) -> Iterator[str]:
        return iter(self._specs)

    def __len__(self) -> int:
        return len(self._specs)


class _LazyGroup(TyperGroup):
    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self.commands = _LazyCommands(COMMANDS)


app = typer.Typer(cls=_LazyGroup, no_args_is_help=True, add_completion=False,
                  help="Clinical reasoning for pharmacist prescribing protocols (see `clinreason protocols`).")


@app.callback()
def _root() -> None:
    # No options of its own: registered so typer builds a group (of the lazy commands) for an app
    # that registers none itself.
    pass


def _build(name: str, spec: str) -> Any:
    """The click command typer builds for `app.command(name)(f)` or `app.add_typer(sub, name=name)`."""
    module, attribute = spec.split(":")
    target = getattr(import_module(f"clinreason.cli.{module}"), attribute)
    if isinstance(target, typer.Typer):
        return get_group_from_info(TyperInfo(target, name=name), pretty_exceptions_short=app.pretty_exceptions_short,
                                   rich_markup_mode=app.rich_markup_mode, suggest_commands=app.suggest_commands)
    return get_command_from_info(CommandInfo(name=name, callback=target), pretty_exceptions_short=app.pretty_exceptions_short,
                                 rich_markup_mode=app.rich_markup_mode)


__all__ = ["app"]
