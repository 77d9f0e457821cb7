"""The root app builds each command when it is looked up (issue 20, part 3); what a user sees is what
an app registering every command up front shows: the same list, in the same order, with the same
help, usage errors and suggestions."""

from __future__ import annotations

import typer
from typer.testing import CliRunner

from clinreason.cli import COMMANDS, admin, app, assess, evaluation, kb, mcp

# Imported here, not first inside an invoke: a module's rich consoles read COLUMNS when created, and
# CliRunner sets it only for the duration of one invoke (the width would stay for later tests).
MODULES = (admin, assess, evaluation, kb, mcp)

runner = CliRunner()

# `clinreason --help` lists them in this order (the order before commands were loaded lazily).
ORDER = ["assess", "signoff", "show", "serve", "mcp", "eval", "compare", "samples", "protocols", "kb", "keys", "db"]


def eager() -> typer.Typer:
    """The app as it was registered before: every command module imported and registered at start."""
    old = typer.Typer(no_args_is_help=True, add_completion=False,
                      help="Clinical reasoning for pharmacist prescribing protocols (see `clinreason protocols`).")
    old.command("assess")(assess.assess_cmd)
    old.command("signoff")(assess.signoff_cmd)
    old.command("show")(assess.show_cmd)
    old.command("serve")(admin.serve)
    old.command("mcp")(mcp.mcp_cmd)
    old.command("eval")(evaluation.eval_cmd)
    old.command("compare")(evaluation.compare_cmd)
    old.command("samples")(assess.samples_cmd)
    old.command("protocols")(assess.protocols_cmd)
    old.add_typer(kb.app, name="kb")
    old.add_typer(admin.keys_app, name="keys")
    old.add_typer(admin.db_app, name="db")
    return old


def _same(args: list[str]) -> None:
    new, old = runner.invoke(app, args, env={"COLUMNS": "120"}), runner.invoke(eager(), args, env={"COLUMNS": "120"})
    assert (new.exit_code, new.output) == (old.exit_code, old.output), args


def test_root_help_lists_every_command_in_order():
    assert list(COMMANDS) == ORDER
    out = runner.invoke(app, ["--help"], env={"COLUMNS": "120"}).output
    at = [out.index(f"│ {name} ") for name in ORDER]
    assert at == sorted(at)
    _same(["--help"])
    _same([])  # no arguments: the help, exit 2


def test_each_command_and_subcommand_has_its_help():
    for name in ORDER:
        _same([name, "--help"])
    for group in ("kb", "keys", "db"):
        sub = runner.invoke(app, [group, "--help"], env={"COLUMNS": "120"}).output
        # A command's row starts right after the panel's border; its help's continuation lines are indented.
        names = [line.split()[1] for line in sub.splitlines() if line.startswith("│ ") and line[2:3].isalpha()]
        assert names, sub
        for cmd in names:
            _same([group, cmd, "--help"])


def test_usage_errors_and_suggestions_are_unchanged():
    _same(["asess"])  # "Did you mean 'assess'?"
    _same(["nosuch"])
    _same(["assess", "--mode"])
    _same(["keys", "create"])
    _same(["db", "nosuch"])
