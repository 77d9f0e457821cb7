"""Assessments: `assess`, `show`, `signoff`, and what they run on: `samples`, `protocols`."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table

from clinreason.cli.common import (
    LEGACY_EXIT_CODES,
    MODES,
    err,
    load_input,
    out,
    reported,
    store,
)
from clinreason.errors import ClinreasonError, InvalidInput, NotFound

if TYPE_CHECKING:
    # Imported by the commands that use them: `samples`, `protocols` and `--help` load no
    # assessment model, and `show` of a missing id no protocol.
    from clinreason.assessment import Assessment

# By what a decision leads to (its plan kind) and, for a referral, how soon.
PLAN_STYLE = {"treat": "green", "none": "cyan"}
URGENCY_STYLE = {"emergency_or_same_day": "bold red", "within_24_48h": "yellow"}


def _decision_style(a: Assessment) -> str:
    from clinreason.protocols.registry import get_spec

    spec = get_spec(a.protocol.protocol_id)
    kind = spec.plan_kind(a.protocol)
    return PLAN_STYLE.get(kind) or URGENCY_STYLE.get(spec.referral_urgency(a.protocol), "magenta")


def _render(a: Assessment) -> None:
    p = a.protocol
    style = _decision_style(a)
    head = f"[{style}]{a.decision}[/]"
    if a.recommendation:
        head += f"\n{a.recommendation.text}"
    out.print(Panel(head, title="Decision", subtitle=f"{p.protocol_id} {p.protocol_version} / profile {p.profile_id} {p.profile_version}"))
    checks = a.plan.blocking_checks if a.plan is not None else p.blocking_checks
    if checks:
        lines = "\n".join(f"[bold]{c.field}[/] {escape(repr(c.entry))}: {escape(c.reason)}" for c in checks)
        out.print(Panel(lines + "\n[dim]sign-off approval is refused until each is acknowledged (--acknowledge ENTRY)[/]",
                        title="[bold red]Blocking checks[/]", border_style="red"))

    rules = Table(title="Rules fired", show_lines=False)
    rules.add_column("rule")
    rules.add_column("title")
    rules.add_column("because")
    for r in p.rules_fired:
        rules.add_row(r.rule_id, r.title, r.detail)
    out.print(rules)

    agents = Table(title="Options (order of preference)")
    agents.add_column("#")
    agents.add_column("option")
    agents.add_column("status")
    agents.add_column("exclusions")
    for ev in p.options:
        status = "[green]allowed[/]" if ev.verified else "[yellow]allowed, unverified[/]" if ev.allowed else "[red]excluded[/]"
        reasons = "\n".join(f"{x.rule_id}: {escape(x.reason)} [dim]({escape(x.evidence)})[/]" for x in ev.exclusions)
        if ev.unverified_by:
            reasons += ("\n" if reasons else "") + f"unverified: {', '.join(ev.unverified_by)} not recognised"
        agents.add_row(str(ev.rank), ev.option, status, reasons or "-")
    out.print(agents)

    if p.follow_up:
        fu = p.follow_up
        from clinreason.protocols.registry import get_spec

        line = get_spec(p.protocol_id).wording.follow_up.format(reassess=fu.reassess).rstrip(".")
        out.print(
            f"[bold]Follow-up:[/] {escape(line)}; escalate if {', '.join(fu.escalate_if)}; "
            f"notify primary prescriber: {'yes' if fu.notify_primary_prescriber else 'no'}; "
            f"prescriber sign-off required: {'yes' if fu.signoff_required else 'no'}"
        )
    for f in p.flags:
        out.print(f"[yellow]! {f.code}[/] {escape(f.message)}")


def _render_full(a: Assessment) -> None:
    assert a.plan is not None and a.audit is not None
    plan = a.plan.regimen.text if a.plan.regimen else a.plan.action
    verdicts = " -> ".join(f"{r.proposal.agent or r.proposal.action}:{r.review.verdict}" for r in a.rounds) or "referral note"
    cites = a.audit["citations"]
    out.print(Panel(
        f"plan: [bold]{plan}[/] (decided by {a.plan.decided_by})\n"
        f"deliberation: {verdicts}\n"
        f"safety gate: {'passed' if a.safety and a.safety.passed else 'VETOED: ' + '; '.join(a.safety.vetoes if a.safety else [])}\n"
        f"citations: {len(a.citations)} references, {cites['unresolved'] + cites['unsupported']} dropped\n"
        f"LLM fallbacks: {len(a.audit['llm_fallbacks'])}\n"
        f"status: [bold]{a.status}[/]" + (f"  ->  clinreason signoff {a.id} --action approve --prescriber ID" if a.status == "awaiting_signoff" else ""),
        title=f"Assessment {a.id}",
    ))


def _emit(result: Assessment, as_json: bool, out_dir: Path | None) -> None:
    payload = result.model_dump(mode="json")
    written = []
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "assessment.json").write_text(json.dumps(payload, indent=2) + "\n", "utf-8")
        written.append(out_dir / "assessment.json")
        if result.report_markdown:
            (out_dir / "report.md").write_text(result.report_markdown, "utf-8")
            written.append(out_dir / "report.md")
    if as_json:
        sys.stdout.write(json.dumps(payload, indent=2) + "\n")
        return
    _render(result)
    if result.mode == "full":
        _render_full(result)
    for path in written:
        out.print(f"[dim]wrote {path}[/]")


def _run_full(data: dict[str, Any], sources: dict[str, Any] | None = None) -> Assessment:
    from clinreason.assessment import validate

    patient = validate(data)  # field errors before anything heavy loads
    with err.status("loading the pipeline") as status:
        from clinreason.pipeline import get_pipeline

        pipeline = get_pipeline()
        return pipeline.run(patient, progress=lambda node: status.update(f"{node} done"), input_sources=sources)


def _run_deterministic(data: dict[str, Any]) -> Assessment:
    from clinreason.assessment import assess

    return assess(data, mode="deterministic")


@reported()
def assess_cmd(
    file: Annotated[Path | None, typer.Argument(help="Patient JSON file, or a FHIR R4 Bundle (docs/fhir-and-cds-hooks.md).",
                                                show_default=False)] = None,
    sample: Annotated[str | None, typer.Option("--sample", help="Name of a bundled sample patient (see `clinreason samples`).")] = None,
    protocol: Annotated[str | None, typer.Option("--protocol", help="Protocol id (see `clinreason protocols`); default: the "
                                                 "file's `protocol` field, else the default protocol.")] = None,
    mode: Annotated[str, typer.Option("--mode", help=f"One of: {', '.join(MODES)}.")] = "full",
    as_json: Annotated[bool, typer.Option("--json", help="Print the assessment as JSON.")] = False,
    out_dir: Annotated[Path | None, typer.Option("--out", help="Write assessment.json (and report.md in full mode) here.")] = None,
    locale: Annotated[str | None, typer.Option("--locale", help="A FHIR Bundle only: the profile's locale code, when its "
                                               "QuestionnaireResponse does not answer it.")] = None,
) -> None:
    """Assess one patient: full mode (default) runs the agents and writes a cited report."""
    if mode not in MODES:
        raise InvalidInput(f"--mode must be one of {', '.join(MODES)}")
    data = load_input(file, sample)
    if isinstance(data, dict) and data.get("resourceType") == "Bundle":
        from clinreason.fhir.intake import read_request

        request, sources = read_request(data, fhir=True, protocol=protocol, locale_code=locale)
        if mode == "full":
            result = _run_full(request, sources)
        else:
            result = _run_deterministic(request).model_copy(update={"input_sources": sources})
        _emit(result, as_json, out_dir)
        return
    if locale is not None:
        raise InvalidInput("--locale is for a FHIR Bundle: a patient JSON names its locale_code")
    if protocol is not None:
        named = data.get("protocol") if isinstance(data, dict) else None
        if named is not None and named != protocol:
            raise InvalidInput(f"--protocol {protocol} but the input names protocol {named!r}")
        if isinstance(data, dict):
            data = {**data, "protocol": protocol}
    result = _run_full(data) if mode == "full" else _run_deterministic(data)
    _emit(result, as_json, out_dir)


def signoff_cmd(
    assessment_id: Annotated[str, typer.Argument(help="Assessment id printed by `clinreason assess`.")],
    action: Annotated[str, typer.Option("--action", help="approve | amend | reject")],
    prescriber: Annotated[str, typer.Option("--prescriber", help="Prescriber id (licence number or staff id).")],
    comment: Annotated[str, typer.Option("--comment")] = "",
    agent: Annotated[str | None, typer.Option("--agent", help="With --action amend: the allowed agent to use instead.")] = None,
    acknowledge: Annotated[list[str] | None, typer.Option(
        "--acknowledge", help="A blocking check you have checked by hand: the unrecognised entry's text or field "
                              "(repeat for each). Approval is refused until every one is acknowledged.")] = None,
    out_dir: Annotated[Path | None, typer.Option("--out", help="Write the signed assessment.json and report.md here.")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Approve, amend or reject an assessment awaiting sign-off (works after a restart)."""
    from clinreason.pipeline import UnacknowledgedChecks, get_pipeline

    def explain(exc: ClinreasonError) -> bool:
        """What only this command knows: the id it looked up, and the command line to retry with."""
        if isinstance(exc, NotFound):
            err.print(f"[red]error:[/] no assessment {assessment_id!r}")
            return True
        if isinstance(exc, UnacknowledgedChecks):
            err.print(f"[red]error:[/] {len(exc.pending)} blocking check(s) not acknowledged; nothing was signed:")
            for c in exc.pending:
                err.print(f"  [bold]{c.field}[/] {escape(repr(c.entry))}: {escape(c.reason)}")
            hint = " ".join(f"--acknowledge {shlex.quote(c.entry)}" for c in exc.pending)
            err.print(escape(f"check each by hand, then: clinreason signoff {assessment_id} --action {action} "
                             f"--prescriber {shlex.quote(prescriber)} {hint}"))
            return True
        return False

    with reported(exit_codes=LEGACY_EXIT_CODES, explain=explain):
        result = get_pipeline().signoff(assessment_id, action, prescriber, comment, agent, acknowledged=acknowledge)
    _emit(result, as_json, out_dir)


FORMAT_NAMES = ("md", "html", "pdf")  # --format: Markdown, one self-contained HTML file, PDF


def _stored_patient(assessment_id: str) -> dict[str, Any] | None:
    """The patient input the checkpoint holds (age and sex for the notification); None when it cannot be read."""
    try:
        from clinreason.config import get_settings
        from clinreason.graph.persistence import make_checkpointer
        from clinreason.rendering import patient_from_checkpoint

        return patient_from_checkpoint(make_checkpointer(get_settings()), assessment_id)
    except Exception:  # no checkpoint (another data dir, a record from elsewhere): the notification leaves blank lines
        return None


@reported(exit_codes=LEGACY_EXIT_CODES)
def show_cmd(
    assessment_id: Annotated[str, typer.Argument()],
    report: Annotated[bool, typer.Option("--report", help="The clinician report (Markdown by default; see --format).")] = False,
    notification: Annotated[bool, typer.Option("--notification", help="The notification to the patient's primary care provider "
                                               "(what was prescribed or advised, why, follow-up).")] = False,
    fmt: Annotated[str, typer.Option("--format", help="With --report or --notification: md, html (one self-contained file) "
                                     "or pdf (needs --out, or a pipe).")] = "md",
    out_file: Annotated[Path | None, typer.Option("--out", help="With --report or --notification: write the document to this file.",
                                                  show_default=False)] = None,
) -> None:
    """Show a stored assessment, or its report or primary-care notification as Markdown, HTML or PDF."""
    if report and notification:
        raise InvalidInput("give at most one of --report and --notification")
    document = report or notification
    if fmt not in FORMAT_NAMES:
        raise InvalidInput(f"--format must be one of {', '.join(FORMAT_NAMES)}, not {fmt!r}")
    if not document and (fmt != "md" or out_file is not None):
        raise InvalidInput("--format and --out go with --report or --notification")
    if document and fmt == "pdf" and out_file is None and sys.stdout.isatty():
        # Checked first: nothing is read or rendered to be thrown at a terminal.
        raise InvalidInput("a PDF is not written to a terminal: use --out FILE (or pipe the output to a file)")
    record = store().get(assessment_id)  # a read: no agents, graph or checkpointer to build
    if record is None:
        raise NotFound(f"no assessment {assessment_id!r}")
    from clinreason.assessment import Assessment

    a = Assessment.from_record(record)
    if not document:
        _emit(a, False, None)
        return
    from clinreason.rendering import FORMATS, notification_document, report_document

    doc = report_document(a) if report else notification_document(a, _stored_patient(assessment_id))
    data = doc.render(FORMATS[fmt])  # PdfUnavailable (exit 5) when a PDF cannot be made
    if out_file is not None:
        try:
            out_file.write_bytes(data)
        except OSError as exc:
            raise InvalidInput(f"cannot write {out_file}: {exc.strerror}") from None
        err.print(f"[dim]wrote {escape(str(out_file))} ({len(data)} bytes)[/]")
    elif fmt == "pdf":
        sys.stdout.flush()
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    else:
        sys.stdout.write(data.decode("utf-8"))


def samples_cmd() -> None:
    """List the bundled sample patients."""
    from clinreason.samples import sample_index, sample_protocol

    table = Table(title="Sample patients")
    table.add_column("name")
    table.add_column("protocol")
    table.add_column("description")
    for name, desc in sample_index().items():
        table.add_row(name, sample_protocol(name), desc)
    out.print(table)


def protocols_cmd(as_json: Annotated[bool, typer.Option("--json", help="Print every protocol with its input JSON schema.")] = False) -> None:
    """List the registered protocols: profiles (and the locale codes that select them), options, decisions."""
    from clinreason.protocols.registry import DEFAULT_PROTOCOL, registry

    summaries = [spec.summary() for spec in registry().values()]
    if as_json:
        sys.stdout.write(json.dumps(summaries, indent=2) + "\n")
        return
    for s in summaries:
        default = " (default)" if s["id"] == DEFAULT_PROTOCOL else ""
        table = Table(title=f"{s['id']} {s['version']}{default}: {s['title']}")
        table.add_column("decision")
        table.add_column("leads to")
        table.add_column("urgency")
        table.add_column("meaning")
        for d in s["decisions"]:
            table.add_row(d["value"], d["plan"], d["urgency"], d["meaning"])
        out.print(table)
        for p in s["profiles"]:
            out.print(f"  profile [bold]{p['id']}[/] {p['version']} (locale_code {', '.join(p['locale_codes'])}): {p['title']}; "
                      f"options {', '.join(p['options'])}")
        out.print("")
