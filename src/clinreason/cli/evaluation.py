"""Vignette evaluation: `eval` runs the set, `compare` sets two runs side by side."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from clinreason.cli.common import MODES, err, out, reported
from clinreason.errors import InvalidInput


@reported()
def eval_cmd(
    mode: Annotated[str, typer.Option("--mode", help="full | deterministic")] = "full",
    backend: Annotated[str | None, typer.Option("--backend", help="rules | llm (default: CLINREASON_AGENT_BACKEND)")] = None,
    vignettes: Annotated[Path | None, typer.Option("--vignettes", help="A vignette JSON file (default: the bundled set).")] = None,
    out_dir: Annotated[Path, typer.Option("--out", help="Where RUN_ID.json and RUN_ID.md are written.")] = Path("eval-runs"),
) -> None:
    """Run the vignette set; exit 1 if any recommendation is unsafe."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from clinreason.config import Settings
    from clinreason.evaluation.harness import load_vignettes, run_eval, to_markdown

    if mode not in MODES or backend not in (None, "rules", "llm"):
        raise InvalidInput("--mode must be full|deterministic and --backend rules|llm")
    try:
        cases = load_vignettes(vignettes)
    except (OSError, ValueError) as exc:
        raise InvalidInput(f"cannot load vignettes: {exc}") from None
    settings = Settings(**({"agent_backend": backend} if backend else {}))
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), console=err, transient=True) as bar:
        task = bar.add_task(f"{mode}/{settings.agent_backend if mode == 'full' else 'protocol'}", total=len(cases))
        summary = run_eval(cases, mode, settings, progress=lambda done, total: bar.update(task, completed=done))  # type: ignore[arg-type]
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"{summary.run_id}.json").write_text(summary.model_dump_json(indent=2), "utf-8")
    markdown = to_markdown(summary)
    (out_dir / f"{summary.run_id}.md").write_text(markdown, "utf-8")
    out.print(markdown)
    out.print(f"[dim]wrote {out_dir / summary.run_id}.json and .md[/]")
    if summary.unsafe:
        err.print(f"[red]UNSAFE:[/] {summary.unsafe} case(s): {', '.join(summary.unsafe_cases)}")
        raise typer.Exit(1)


@reported()
def compare_cmd(
    run_a: Annotated[Path, typer.Argument(help="An eval run JSON.")],
    run_b: Annotated[Path, typer.Argument(help="Another eval run JSON.")],
    out_file: Annotated[Path | None, typer.Option("--out", help="Also write the comparison here.")] = None,
) -> None:
    """Side-by-side comparison of two eval runs (for example rules vs LLM backend)."""
    from clinreason.evaluation.harness import RunSummary, compare

    try:
        a, b = (RunSummary.model_validate_json(p.read_text("utf-8")) for p in (run_a, run_b))
    except (OSError, ValueError) as exc:
        raise InvalidInput(f"cannot read run: {exc}") from None
    text = compare(a, b)
    if out_file:
        out_file.write_text(text, "utf-8")
    out.print(text)
