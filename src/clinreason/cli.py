"""`clinreason` command line (typer + rich)."""

from __future__ import annotations

import json
import shlex
import sys
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table

from clinreason.assessment import MODES, Assessment, assess
from clinreason.errors import InvalidPatient
from clinreason.knowledge.evaluation import (
    METHODS,
    MISS_DEPTH,
    SETS,
    load_eval_queries,
    miss_breakdown,
)
from clinreason.samples import load_sample, sample_index

if TYPE_CHECKING:
    from rich.progress import TaskID

    from clinreason.knowledge.index import KnowledgeIndex

app = typer.Typer(no_args_is_help=True, add_completion=False,
                  help="Clinical reasoning for pharmacist prescribing protocols (see `clinreason protocols`).")
out = Console()
err = Console(stderr=True, soft_wrap=True)  # error lines stay whole for grep and logs

EXIT_BAD_INPUT = 2

# By what a decision leads to (its plan kind) and, for a referral, how soon.
PLAN_STYLE = {"treat": "green", "none": "cyan"}
URGENCY_STYLE = {"emergency_or_same_day": "bold red", "within_24_48h": "yellow"}


def _decision_style(a: Assessment) -> str:
    from clinreason.protocols.registry import get_spec

    spec = get_spec(a.protocol.protocol_id)
    kind = spec.plan_kind(a.protocol)
    return PLAN_STYLE.get(kind) or URGENCY_STYLE.get(spec.referral_urgency(a.protocol), "magenta")


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
        out.print(
            f"[bold]Follow-up:[/] reassess at {fu.reassess}; escalate if {', '.join(fu.escalate_if)}; "
            f"notify primary prescriber: {'yes' if fu.notify_primary_prescriber else 'no'}; "
            f"prescriber sign-off required: {'yes' if fu.signoff_required else 'no'}"
        )
    for f in p.flags:
        out.print(f"[yellow]! {f.code}[/] {escape(f.message)}")


@app.command("assess")
def assess_cmd(
    file: Annotated[Path | None, typer.Argument(help="Patient JSON file.", show_default=False)] = None,
    sample: Annotated[str | None, typer.Option("--sample", help="Name of a bundled sample patient (see `clinreason samples`).")] = None,
    protocol: Annotated[str | None, typer.Option("--protocol", help="Protocol id (see `clinreason protocols`); default: the "
                                                 "file's `protocol` field, else the default protocol.")] = None,
    mode: Annotated[str, typer.Option("--mode", help=f"One of: {', '.join(MODES)}.")] = "full",
    as_json: Annotated[bool, typer.Option("--json", help="Print the assessment as JSON.")] = False,
    out_dir: Annotated[Path | None, typer.Option("--out", help="Write assessment.json (and report.md in full mode) here.")] = None,
) -> None:
    """Assess one patient: full mode (default) runs the agents and writes a cited report."""
    if mode not in MODES:
        err.print(f"[red]error:[/] --mode must be one of {', '.join(MODES)}")
        raise typer.Exit(EXIT_BAD_INPUT)
    data = _load_input(file, sample)
    if protocol is not None:
        named = data.get("protocol") if isinstance(data, dict) else None
        if named is not None and named != protocol:
            err.print(f"[red]error:[/] --protocol {protocol} but the input names protocol {named!r}")
            raise typer.Exit(EXIT_BAD_INPUT)
        if isinstance(data, dict):
            data = {**data, "protocol": protocol}
    try:
        if mode == "full":
            result = _run_full(data)
        else:
            result = assess(data, mode="deterministic")
    except InvalidPatient as exc:
        err.print(f"[red]invalid patient[/] ({len(exc.errors)} error(s)):")
        for e in exc.errors:
            err.print(f"  [bold]{e.field}[/]: {escape(e.message)}")
        raise typer.Exit(EXIT_BAD_INPUT) from None
    _emit(result, as_json, out_dir)


def _run_full(data: dict[str, Any]) -> Assessment:
    from clinreason.assessment import validate

    patient = validate(data)  # field errors before anything heavy loads
    with err.status("loading the pipeline") as status:
        from clinreason.pipeline import get_pipeline

        pipeline = get_pipeline()
        return pipeline.run(patient, progress=lambda node: status.update(f"{node} done"))


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


kb_app = typer.Typer(no_args_is_help=True, help="Knowledge base: build the index, search, show chunks.")
app.add_typer(kb_app, name="kb")


@contextmanager
def _build_progress() -> Iterator[Callable[[str, int, int], None]]:
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


def _open_index(force: bool = False, scope: tuple[str, str] | None = None) -> KnowledgeIndex:
    from clinreason.knowledge.retrieval import get_index

    with _build_progress() as progress:
        return get_index(progress=progress, force=force, scope=scope)


@kb_app.command("build")
def kb_build(force: Annotated[bool, typer.Option("--force", help="Re-embed every chunk.")] = False) -> None:
    """Build or update the index of every knowledge base (one per protocol and profile; incremental:
    unchanged chunks are not embedded again)."""
    from clinreason.knowledge.corpus import all_scopes

    for scope in all_scopes():
        index = _open_index(force, scope)
        report = index.last_build
        name = "/".join(scope)
        if report is None:
            out.print(f"{name}: index is current: {len(index.chunks)} chunks, kb version {index.version}")
        else:
            out.print(
                f"{name}: kb version {report.kb_version}: {report.total} chunks, {report.embedded} embedded, "
                f"{report.unchanged} unchanged, {report.removed} removed in {report.seconds:.1f} s"
            )


@kb_app.command("search")
def kb_search(
    query: Annotated[str, typer.Argument(help="Question or keywords.")],
    k: Annotated[int, typer.Option("-k", min=1, max=50, help="How many passages.")] = 5,
    protocol: Annotated[str | None, typer.Option("--protocol", help="Protocol id (see `clinreason protocols`); default: the default protocol.")] = None,
    profile: Annotated[str | None, typer.Option("--profile", help="Profile id of that protocol; default its first.")] = None,
    kind: Annotated[list[str] | None, typer.Option(help="policy | monograph | guideline (repeatable).")] = None,
    option: Annotated[list[str] | None, typer.Option("--option", help="An option id of the protocol (repeatable).")] = None,
    jurisdiction: Annotated[list[str] | None, typer.Option(help="A document jurisdiction, as `kb show` prints it (repeatable).")] = None,
    method: Annotated[str, typer.Option(help="hybrid | rrf (hybrid without rule links) | bm25 | dense.")] = "hybrid",
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Search one knowledge base (a protocol under one of its profiles)."""
    from clinreason.knowledge.corpus import scope_of
    from clinreason.knowledge.linking import linked_rules
    from clinreason.knowledge.spelling import correct_spelling, corrections

    filters = {key: v for key, v in (("kind", kind), ("option", option), ("jurisdiction", jurisdiction)) if v}
    from clinreason.knowledge.retrieval import Passage, chunk_by_id, search_ids

    try:
        scope = scope_of(protocol, profile)
    except KeyError as exc:
        err.print(f"[red]error:[/] {exc.args[0] if exc.args else exc}")
        raise typer.Exit(EXIT_BAD_INPUT) from None
    try:
        with _build_progress() as progress:  # served from the result cache when seen before
            hits = search_ids(query, k, filters, method=method, progress=progress, scope=scope)
    except ValueError as exc:
        err.print(f"[red]error:[/] {exc}")
        raise typer.Exit(EXIT_BAD_INPUT) from None
    passages = [Passage.from_chunk(chunk_by_id()[cid], score) for cid, score in hits]
    if as_json:
        sys.stdout.write(json.dumps([p.model_dump() for p in passages], indent=2) + "\n")
        return
    fixes = corrections(query, scope)
    if fixes:
        out.print(f"[dim]spelling:[/] {', '.join(f'{typed} -> {fixed}' for typed, fixed in fixes)}")
    if method == "hybrid":
        out.print(f"[dim]linked rules:[/] {', '.join(linked_rules(correct_spelling(query, scope), scope)) or 'none'}")
    if not passages:
        out.print("no passages match")
    for rank, p in enumerate(passages, 1):
        out.print(f"[bold]{rank}. {p.chunk_id}[/]  [dim]score {p.score:.4f} | {p.kind} | {p.title}[/]")
        out.print(f"   {p.text[:300]}{'...' if len(p.text) > 300 else ''}")


@kb_app.command("show")
def kb_show(chunk_id: Annotated[str, typer.Argument(help="A chunk id as `kb search` shows it (protocol/profile/doc#section).")], as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Print one chunk in full, with its source and version."""
    from clinreason.knowledge.retrieval import get_chunk

    try:
        c = get_chunk(chunk_id)
    except KeyError as exc:
        err.print(f"[red]error:[/] {exc.args[0]}; try `clinreason kb search`")
        raise typer.Exit(EXIT_BAD_INPUT) from None
    if as_json:
        sys.stdout.write(c.model_dump_json(indent=2) + "\n")
        return
    out.print(Panel(c.text, title=f"{c.id}", subtitle=f"{c.kind} | {c.jurisdiction} | version {c.version}"))
    out.print(f"[bold]{c.title}[/] / {c.section}\n[dim]source:[/] {c.source}\n[dim]content hash:[/] {c.content_hash}")
    out.print(f"[dim]protocol rules:[/] {', '.join(c.rules) or 'none'}")


@app.command("signoff")
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
    from clinreason.pipeline import (
        AssessmentNotFound,
        InvalidSignoff,
        NotAwaitingSignoff,
        UnacknowledgedChecks,
        get_pipeline,
    )

    try:
        result = get_pipeline().signoff(assessment_id, action, prescriber, comment, agent, acknowledged=acknowledge)
    except AssessmentNotFound:
        err.print(f"[red]error:[/] no assessment {assessment_id!r}")
        raise typer.Exit(EXIT_BAD_INPUT) from None
    except NotAwaitingSignoff as exc:
        err.print(f"[red]error:[/] {exc}")
        raise typer.Exit(EXIT_BAD_INPUT) from None
    except UnacknowledgedChecks as exc:
        err.print(f"[red]error:[/] {len(exc.pending)} blocking check(s) not acknowledged; nothing was signed:")
        for c in exc.pending:
            err.print(f"  [bold]{c.field}[/] {escape(repr(c.entry))}: {escape(c.reason)}")
        hint = " ".join(f"--acknowledge {shlex.quote(c.entry)}" for c in exc.pending)
        err.print(escape(f"check each by hand, then: clinreason signoff {assessment_id} --action {action} --prescriber {shlex.quote(prescriber)} {hint}"))
        raise typer.Exit(EXIT_BAD_INPUT) from None
    except InvalidSignoff as exc:
        for field, message in exc.errors.items():
            err.print(f"  [bold]{field}[/]: {escape(message)}")
        raise typer.Exit(EXIT_BAD_INPUT) from None
    _emit(result, as_json, out_dir)


@app.command("show")
def show_cmd(
    assessment_id: Annotated[str, typer.Argument()],
    report: Annotated[bool, typer.Option("--report", help="Print the markdown report.")] = False,
) -> None:
    """Show a stored assessment."""
    from clinreason.assessment import Assessment

    record = _store().get(assessment_id)  # a read: no agents, graph or checkpointer to build
    if record is None:
        err.print(f"[red]error:[/] no assessment {assessment_id!r}")
        raise typer.Exit(EXIT_BAD_INPUT)
    a = Assessment.from_record(record)
    if report:
        sys.stdout.write(a.report_markdown or "")
    else:
        _emit(a, False, None)


keys_app = typer.Typer(no_args_is_help=True, help="API keys for the REST service (stored hashed).")
app.add_typer(keys_app, name="keys")


def _store():
    from clinreason.config import get_settings
    from clinreason.store import Store

    return Store(get_settings())


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Option("--name", help="Who the key belongs to (shown in the audit log and sign-offs).")],
    role: Annotated[str, typer.Option("--role", help="submitter | prescriber | admin")],
    site: Annotated[str | None, typer.Option(
        "--site", help="The site (pharmacy) the key belongs to, e.g. pharmacy-042; required for submitter and prescriber. "
                       "An admin without a site is global.")] = None,
) -> None:
    """Create an API key; it is printed once and only its hash is stored."""
    if not name.strip():
        err.print("[red]error:[/] --name must not be empty")
        raise typer.Exit(EXIT_BAD_INPUT)
    try:
        key = _store().create_key(name.strip(), role, site)  # type: ignore[arg-type]
    except ValueError as exc:  # the store owns the rules for roles and sites
        err.print(f"[red]error:[/] {exc}")
        raise typer.Exit(EXIT_BAD_INPUT) from None
    where = f"site {site!r}" if site else "every site (global admin)"
    err.print(f"created a {role} key for {name!r} at {where}; store it now, it cannot be shown again:")
    sys.stdout.write(key + "\n")


@keys_app.command("list")
def keys_list() -> None:
    """List keys (ids, names, roles; never the secrets)."""
    table = Table(title="API keys")
    for col in ("key id", "name", "role", "site", "created", "revoked"):
        table.add_column(col)
    for k in _store().list_keys():
        table.add_row(k["key_id"], k["name"], k["role"], k["site"] or "(global)", k["created_at"], "yes" if k["revoked"] else "no")
    out.print(table)


@keys_app.command("revoke")
def keys_revoke(key_id: Annotated[str, typer.Argument(help="The key id (the part after cr_).")]) -> None:
    """Revoke a key."""
    if not _store().revoke_key(key_id):
        err.print(f"[red]error:[/] no key {key_id!r}")
        raise typer.Exit(EXIT_BAD_INPUT)
    out.print(f"revoked {key_id}")


db_app = typer.Typer(no_args_is_help=True, help="The assessment store's schema (SQLite, or Postgres with CLINREASON_DATABASE_URL).")
app.add_typer(db_app, name="db")


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Upgrade the store to the current schema in place (also done on `serve` and on first use)."""
    from clinreason.config import get_settings
    from clinreason.store import Store

    store = Store(get_settings(), upgrade=False)
    before, after = store.upgrade()
    out.print(f"store at revision {after}" + (" (already current)" if before == after else f" (was {before or 'empty'})"))


@db_app.command("current")
def db_current() -> None:
    """Show the store's schema revision without changing anything."""
    from clinreason.config import get_settings
    from clinreason.store import Store
    from clinreason.store.migrate import HEAD

    rev = Store(get_settings(), upgrade=False).revision()
    out.print(f"store at revision {rev or 'none (empty)'}; this release needs {HEAD}")
    if rev != HEAD:
        raise typer.Exit(1)


@app.command("serve")
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8000,
    workers: Annotated[int, typer.Option(min=1, max=64, help="Worker processes.")] = 1,
    graceful_timeout: Annotated[int, typer.Option(help="Seconds to finish requests in flight on shutdown.")] = 30,
) -> None:
    """Run the REST API (uvicorn). SIGTERM drains requests in flight before exiting.

    Request heads (request line and headers) over CLINREASON_MAX_HEADER_BYTES are
    answered 431 as they arrive, before they are buffered or parsed."""
    import uvicorn

    from clinreason.api.server import uvicorn_options
    from clinreason.config import get_settings

    uvicorn.run("clinreason.api.app:create_app", factory=True, host=host, port=port, workers=workers,
                timeout_graceful_shutdown=graceful_timeout, log_level="info",
                **uvicorn_options(get_settings().max_header_bytes))


_SET_HELP = " | ".join(SETS)


def _require_choice(option: str, value: str, choices: Collection[str]) -> None:
    if value not in choices:
        err.print(f"[red]error:[/] {option} must be one of {', '.join(choices)}")
        raise typer.Exit(EXIT_BAD_INPUT)


@kb_app.command("eval")
def kb_eval(
    k: Annotated[int, typer.Option("-k", min=1, max=50)] = 5,
    which: Annotated[str, typer.Option("--set", help=_SET_HELP)] = "dev",
) -> None:
    """Recall@k of essential passages and of facts, MRR, hit@k and graded nDCG@k for each retrieval method."""
    from clinreason.knowledge.evaluation import evaluate_all

    _require_choice("--set", which, SETS)
    index = _open_index()
    table = Table(title=f"Retrieval on labelled pharmacist questions ({which} set, k={k})")
    cols = ("method", f"recall@{k}", f"fact recall@{k}", f"capped recall@{k}", "MRR", f"hit@{k}", f"nDCG@{k}",
            f"recall@{k} (all graded)", "questions")
    for col in cols:
        table.add_column(col)
    for m in evaluate_all(index, k, which):
        values = (m.recall, m.fact_recall, m.capped_recall, m.mrr, m.hit_rate, m.ndcg, m.recall_all)
        table.add_row(m.method, *(f"{v:.3f}" for v in values), str(m.n))
    out.print("recall, MRR and hit count essential passages; fact recall counts a fact found when one passage stating it is; "
              "nDCG grades essential 2, supporting 1")
    out.print(table)


@kb_app.command("misses")
def kb_misses(
    k: Annotated[int, typer.Option("-k", min=1, max=50)] = 5,
    which: Annotated[str, typer.Option("--set", help=_SET_HELP)] = "dev",
    method: Annotated[str, typer.Option("--method", help=" | ".join(METHODS))] = "hybrid",
    lost_only: Annotated[bool, typer.Option("--lost-only", help="Only misses whose fact is not in the top k.")] = False,
) -> None:
    """Each essential passage missing from a question's top k: its rank, and whether its fact is there anyway."""
    _require_choice("--set", which, SETS)
    _require_choice("--method", method, METHODS)
    b = miss_breakdown(_open_index(), load_eval_queries(which), k, method)
    table = Table(title=f"Essential passages missing from the {method} top {k} ({which} set)")
    for col in ("question", "rank", "missing passage", f"its fact in top {k}", "question text"):
        table.add_column(col)
    for m in b.misses:
        if not (lost_only and m.fact_found):
            table.add_row(m.query.id, str(m.rank) if m.rank else f">{MISS_DEPTH}", m.chunk_id,
                          "yes (restatement)" if m.fact_found else "no (fact lost)", m.query.query)
    out.print(table)
    out.print(f"{b.essential} essential passages: {b.found} in the top {k}; {b.restated} missing restate a fact in the "
              f"top {k}; {b.lost} missing state a fact the top {k} lacks")


@kb_app.command("agreement")
def kb_agreement(k: Annotated[int, typer.Option("-k", min=1, max=50)] = 5) -> None:
    """How far two assessors' labels agree on the same question, beside hybrid retrieval judged by each."""
    from clinreason.knowledge.evaluation import assessor_agreement, double_graded_pairs, evaluate, paraphrase_pairs

    index = _open_index()
    table = Table(title="Two assessors, one question: agreement, and hybrid retrieval judged by each")
    for col in ("questions", "judged", "passage recall", "fact recall"):
        table.add_column(col)
    for name, pairs in (("blind5, graded twice", double_graded_pairs()), ("asked twice in earlier sets", paraphrase_pairs())):
        agreement = assessor_agreement(pairs)
        table.add_row(f"{name}: {agreement.pairs} pairs", "one assessor's essential labels by the other's (no cut-off)",
                      f"{agreement.passage_recall:.3f}", f"{agreement.fact_recall:.3f}")
        for side, label in ((0, "first"), (1, "second")):
            m = evaluate(index, [pair[side] for pair in pairs], "hybrid", k)
            table.add_row("", f"hybrid top {k}, by the {label} assessor's labels", f"{m.recall:.3f}", f"{m.fact_recall:.3f}")
        table.add_row("", f"identical essential labels: {agreement.identical:.0%} of pairs", "", "", end_section=True)
    out.print(table)


@app.command("eval")
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
        err.print("[red]error:[/] --mode must be full|deterministic and --backend rules|llm")
        raise typer.Exit(EXIT_BAD_INPUT)
    try:
        cases = load_vignettes(vignettes)
    except (OSError, ValueError) as exc:
        err.print(f"[red]error:[/] cannot load vignettes: {exc}")
        raise typer.Exit(EXIT_BAD_INPUT) from None
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


@app.command("compare")
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
        err.print(f"[red]error:[/] cannot read run: {exc}")
        raise typer.Exit(EXIT_BAD_INPUT) from None
    text = compare(a, b)
    if out_file:
        out_file.write_text(text, "utf-8")
    out.print(text)


@app.command("samples")
def samples_cmd() -> None:
    """List the bundled sample patients."""
    from clinreason.samples import sample_protocol

    table = Table(title="Sample patients")
    table.add_column("name")
    table.add_column("protocol")
    table.add_column("description")
    for name, desc in sample_index().items():
        table.add_row(name, sample_protocol(name), desc)
    out.print(table)


@app.command("protocols")
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


if __name__ == "__main__":  # pragma: no cover
    app()
