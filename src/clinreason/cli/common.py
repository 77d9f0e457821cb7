"""What every command shares: the consoles, exit codes, input loading, error reporting, build progress.

Imports stay light (typer, rich, clinreason.errors): a command imports what it needs when it runs.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.markup import escape

from clinreason.errors import ClinreasonError, Conflict, InvalidInput, NotFound

if TYPE_CHECKING:
    from rich.progress import TaskID

    from clinreason.knowledge.index import KnowledgeIndex
    from clinreason.store import Store

out = Console()
err = Console(stderr=True, soft_wrap=True)  # error lines stay whole for grep and logs

EXIT_BAD_INPUT = 2

# clinreason.assessment.MODES (tests/test_cold_imports.py checks they agree), here so that the
# options' help and checks do not load the assessment model and every protocol.
MODES: tuple[str, ...] = ("full", "deterministic")

# Before the error tree every error the CLI reported exited 2 (EXIT_BAD_INPUT), a missing assessment and
# unacknowledged blocking checks among them, and tests and scripts check that. Commands that reported a
# NotFound or a Conflict then pass this to `reported` to keep their exit code; without it they exit with
# the tree's own codes (3 and 4).
LEGACY_EXIT_CODES: Mapping[type[ClinreasonError], int] = {NotFound: EXIT_BAD_INPUT, Conflict: EXIT_BAD_INPUT}


def print_error(exc: ClinreasonError) -> None:
    """An error as the CLI prints it on stderr: invalid input with field errors as a titled list of
    them, anything else as one `error: message` line."""
    fields = exc.field_errors()
    if isinstance(exc, InvalidInput) and fields:
        err.print(f"[red]{escape(exc.title.lower())}[/] ({len(fields)} error(s)):")
        for f in fields:
            err.print(f"  [bold]{escape(f['field'])}[/]: {escape(f['message'])}")
    else:
        err.print(f"[red]error:[/] {escape(str(exc))}")


@contextmanager
def reported(
    *,
    exit_codes: Mapping[type[ClinreasonError], int] | None = None,
    explain: Callable[[ClinreasonError], bool] | None = None,
) -> Iterator[None]:
    """Report a ClinreasonError raised in the block (or the decorated command) and exit with its code.

    exit_codes: an exit code for errors of a class (and its subclasses) instead of their `exit_code`.
    explain: prints an error the command can say more about (a retry hint, say) and returns True;
    it returns False to leave the error to `print_error`.
    """
    try:
        yield
    except ClinreasonError as exc:
        if explain is None or not explain(exc):
            print_error(exc)
        code = next((c for cls, c in (exit_codes or {}).items() if isinstance(exc, cls)), exc.exit_code)
        raise typer.Exit(code) from None


def load_input(file: Path | None, sample: str | None) -> dict[str, Any]:
    """The request JSON of a patient file or a bundled sample; InvalidInput when neither can be read."""
    if (file is None) == (sample is None):
        raise InvalidInput("give exactly one of FILE or --sample NAME")
    if sample is not None:
        from clinreason.samples import load_sample

        try:
            return load_sample(sample)
        except KeyError as exc:
            raise InvalidInput(exc.args[0]) from None
    assert file is not None
    try:
        data = json.loads(file.read_text("utf-8"))
    except OSError as exc:
        raise InvalidInput(f"cannot read {file}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"{file} is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})") from None
    # utiplayground's sample files wrap each patient as {"name": ..., "patient": {...}}.
    if isinstance(data, dict) and set(data) == {"name", "patient"}:
        data = data["patient"]
    return data


def store() -> Store:
    """The assessment and key store the settings name (upgraded to the current schema on first use)."""
    from clinreason.config import get_settings
    from clinreason.store import Store

    return Store(get_settings())


@contextmanager
def build_progress() -> Iterator[Callable[[str, int, int], None]]:
    """A progress callback for index builds, drawn on stderr while the block runs."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=err, transient=True) as bar:
        tasks: dict[str, TaskID] = {}

        def progress(stage: str, done: int, total: int) -> None:
            label = {"compare": "unchanged chunks", "embed": "embedding chunks"}[stage]
            if stage not in tasks:
                tasks[stage] = bar.add_task(label, total=total)
            bar.update(tasks[stage], completed=done)

        yield progress


def open_index(force: bool = False, scope: tuple[str, str] | None = None) -> KnowledgeIndex:
    """The knowledge-base index of one scope (default: the default protocol's), built first if need be."""
    from clinreason.knowledge.retrieval import get_index

    with build_progress() as progress:
        return get_index(progress=progress, force=force, scope=scope)
