"""`clinreason` command line (typer + rich)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.panel import Panel
from rich.table import Table

from clinreason.assessment import MODES, Assessment, assess
from clinreason.errors import InvalidPatient, ModeUnavailable
from clinreason.protocols.result import Decision
from clinreason.samples import load_sample, sample_index

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Clinical reasoning pipeline: UTI (CA-ON).")
out = Console()
err = Console(stderr=True, soft_wrap=True)  # error lines stay whole for grep and logs

EXIT_BAD_INPUT = 2

DECISION_STYLE = {
    Decision.recommend_treatment: "green",
    Decision.no_antibiotics: "cyan",
    Decision.refer_urgent: "bold red",
    Decision.refer_complicated: "yellow",
    Decision.refer_recurrence: "yellow",
    Decision.refer_no_safe_option: "magenta",
}


def _load_input(file: Path | None, sample: str | None) -> dict[str, Any]:
    if (file is None) == (sample is None):
        err.print("[red]error:[/] give exactly one of FILE or --sample NAME")
        raise typer.Exit(EXIT_BAD_INPUT)
    if sample is not None:
        try:
            return load_sample(sample)
        except KeyError as exc:
            err.print(f"[red]error:[/] {exc.args[0]}")
            raise typer.Exit(EXIT_BAD_INPUT) from None
    assert file is not None
    try:
        data = json.loads(file.read_text("utf-8"))
    except OSError as exc:
        err.print(f"[red]error:[/] cannot read {file}: {exc.strerror}")
        raise typer.Exit(EXIT_BAD_INPUT) from None
    except json.JSONDecodeError as exc:
        err.print(f"[red]error:[/] {file} is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})")
        raise typer.Exit(EXIT_BAD_INPUT) from None
    # utiplayground's sample files wrap each patient as {"name": ..., "patient": {...}}.
    if isinstance(data, dict) and set(data) == {"name", "patient"}:
        data = data["patient"]
    return data


def _render(a: Assessment) -> None:
    p = a.protocol
    style = DECISION_STYLE[a.decision]
    head = f"[{style}]{a.decision.value}[/]"
    if a.recommendation:
        head += f"\n{a.recommendation.text}"
    out.print(Panel(head, title="Decision", subtitle=f"{p.protocol_id} {p.protocol_version} / profile {p.profile_id} {p.profile_version}"))

    rules = Table(title="Rules fired", show_lines=False)
    rules.add_column("rule")
    rules.add_column("title")
    rules.add_column("because")
    for r in p.rules_fired:
        rules.add_row(r.rule_id, r.title, r.detail)
    out.print(rules)

    agents = Table(title="Agents (order of preference)")
    agents.add_column("#")
    agents.add_column("agent")
    agents.add_column("status")
    agents.add_column("exclusions")
    for ev in p.agents:
        status = "[green]allowed[/]" if ev.allowed else "[red]excluded[/]"
        reasons = "\n".join(f"{x.rule_id}: {x.reason} [dim]({x.evidence})[/]" for x in ev.exclusions)
        agents.add_row(str(ev.rank), ev.agent, status, reasons or "-")
    out.print(agents)

    if p.follow_up:
        fu = p.follow_up
        out.print(
            f"[bold]Follow-up:[/] reassess at {fu.reassess}; escalate if {', '.join(fu.escalate_if)}; "
            f"notify primary prescriber: {'yes' if fu.notify_primary_prescriber else 'no'}; "
            f"prescriber sign-off required: {'yes' if fu.signoff_required else 'no'}"
        )
    for f in p.flags:
        out.print(f"[yellow]! {f.code}[/] {f.message}")


@app.command("assess")
def assess_cmd(
    file: Annotated[Path | None, typer.Argument(help="Patient JSON file.", show_default=False)] = None,
    sample: Annotated[str | None, typer.Option("--sample", help="Name of a bundled sample patient (see `clinreason samples`).")] = None,
    mode: Annotated[str, typer.Option("--mode", help=f"One of: {', '.join(MODES)}.")] = "deterministic",
    as_json: Annotated[bool, typer.Option("--json", help="Print the assessment as JSON.")] = False,
    out_dir: Annotated[Path | None, typer.Option("--out", help="Write assessment.json into this directory.")] = None,
) -> None:
    """Assess one patient and print the decision."""
    if mode not in MODES:
        err.print(f"[red]error:[/] --mode must be one of {', '.join(MODES)}")
        raise typer.Exit(EXIT_BAD_INPUT)
    data = _load_input(file, sample)
    try:
        result = assess(data, mode=mode)  # type: ignore[arg-type]
    except InvalidPatient as exc:
        err.print(f"[red]invalid patient[/] ({len(exc.errors)} error(s)):")
        for e in exc.errors:
            err.print(f"  [bold]{e.field}[/]: {e.message}")
        raise typer.Exit(EXIT_BAD_INPUT) from None
    except ModeUnavailable as exc:
        err.print(f"[red]error:[/] {exc}")
        raise typer.Exit(EXIT_BAD_INPUT) from None
    payload = result.model_dump(mode="json")
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "assessment.json").write_text(json.dumps(payload, indent=2) + "\n", "utf-8")
    if as_json:
        sys.stdout.write(json.dumps(payload, indent=2) + "\n")
    else:
        _render(result)
        if out_dir is not None:
            out.print(f"[dim]wrote {out_dir / 'assessment.json'}[/]")


@app.command("samples")
def samples_cmd() -> None:
    """List the bundled sample patients."""
    table = Table(title="Sample patients")
    table.add_column("name")
    table.add_column("description")
    for name, desc in sample_index().items():
        table.add_row(name, desc)
    out.print(table)


if __name__ == "__main__":  # pragma: no cover
    app()
