"""`kb`: build the knowledge-base indexes, search them, show chunks, and evaluate retrieval."""

from __future__ import annotations

import json
import sys
from collections.abc import Collection
from typing import Annotated

import typer
from rich.panel import Panel
from rich.table import Table

from clinreason.cli.common import (
    LEGACY_EXIT_CODES,
    build_progress,
    open_index,
    out,
    reported,
)
from clinreason.errors import InvalidInput, NotFound
from clinreason.knowledge.evaluation import (
    ALL_SETS,
    METHODS,
    MISS_DEPTH,
    load_eval_queries,
    miss_breakdown,
)

app = typer.Typer(no_args_is_help=True, help="Knowledge base: build the index, search, show chunks.")

_SET_HELP = " | ".join(ALL_SETS)  # each set is ranked in its own knowledge base


def _require_choice(option: str, value: str, choices: Collection[str]) -> None:
    if value not in choices:
        raise InvalidInput(f"{option} must be one of {', '.join(choices)}")


@app.command("build")
def kb_build(force: Annotated[bool, typer.Option("--force", help="Re-embed every chunk.")] = False) -> None:
    """Build or update the index of every knowledge base (one per protocol and profile; incremental:
    unchanged chunks are not embedded again)."""
    from clinreason.config import get_settings
    from clinreason.knowledge.corpus import all_scopes
    from clinreason.knowledge.retrieval import evidence_texts, prepare_evidence

    for scope in all_scopes():
        index = open_index(force, scope)
        report = index.last_build
        name = "/".join(scope)
        if report is None:
            out.print(f"{name}: index is current: {len(index.chunks)} chunks, kb version {index.version}")
        else:
            out.print(
                f"{name}: kb version {report.kb_version}: {report.total} chunks, {report.embedded} embedded, "
                f"{report.unchanged} unchanged, {report.removed} removed in {report.seconds:.1f} s"
            )
        # Every text the assessments' evidence plan can search for: no request loads the model.
        embedded = prepare_evidence(get_settings(), scope)
        out.print(f"{name}: {len(evidence_texts(scope))} evidence-plan queries, {embedded} embedded now")


@app.command("search")
@reported()
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
    from clinreason.knowledge.retrieval import Passage, chunk_by_id, search_ids
    from clinreason.knowledge.spelling import correct_spelling, corrections

    filters = {key: v for key, v in (("kind", kind), ("option", option), ("jurisdiction", jurisdiction)) if v}
    try:
        scope = scope_of(protocol, profile)
    except KeyError as exc:
        raise InvalidInput(exc.args[0] if exc.args else str(exc)) from None
    try:
        with build_progress() as progress:  # served from the result cache when seen before
            hits = search_ids(query, k, filters, method=method, progress=progress, scope=scope)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None
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


@app.command("show")
@reported(exit_codes=LEGACY_EXIT_CODES)
def kb_show(chunk_id: Annotated[str, typer.Argument(help="A chunk id as `kb search` shows it (protocol/profile/doc#section).")], as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Print one chunk in full, with its source and version."""
    from clinreason.knowledge.retrieval import get_chunk

    try:
        c = get_chunk(chunk_id)
    except KeyError as exc:
        raise NotFound(f"{exc.args[0]}; try `clinreason kb search`") from None
    if as_json:
        sys.stdout.write(c.model_dump_json(indent=2) + "\n")
        return
    out.print(Panel(c.text, title=f"{c.id}", subtitle=f"{c.kind} | {c.jurisdiction} | version {c.version}"))
    out.print(f"[bold]{c.title}[/] / {c.section}\n[dim]source:[/] {c.source}\n[dim]content hash:[/] {c.content_hash}")
    out.print(f"[dim]protocol rules:[/] {', '.join(c.rules) or 'none'}")


@app.command("eval")
@reported()
def kb_eval(
    k: Annotated[int, typer.Option("-k", min=1, max=50)] = 5,
    which: Annotated[str, typer.Option("--set", help=_SET_HELP)] = "dev",
) -> None:
    """Recall@k of essential passages and of facts, MRR, hit@k and graded nDCG@k for each retrieval method."""
    from clinreason.knowledge.evaluation import evaluate_all

    _require_choice("--set", which, ALL_SETS)
    index = open_index()
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


@app.command("misses")
@reported()
def kb_misses(
    k: Annotated[int, typer.Option("-k", min=1, max=50)] = 5,
    which: Annotated[str, typer.Option("--set", help=_SET_HELP)] = "dev",
    method: Annotated[str, typer.Option("--method", help=" | ".join(METHODS))] = "hybrid",
    lost_only: Annotated[bool, typer.Option("--lost-only", help="Only misses whose fact is not in the top k.")] = False,
) -> None:
    """Each essential passage missing from a question's top k: its rank, and whether its fact is there anyway."""
    _require_choice("--set", which, ALL_SETS)
    _require_choice("--method", method, METHODS)
    b = miss_breakdown(open_index(), load_eval_queries(which), k, method)
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


@app.command("agreement")
def kb_agreement(k: Annotated[int, typer.Option("-k", min=1, max=50)] = 5) -> None:
    """How far two assessors' labels agree on the same question, beside hybrid retrieval judged by each."""
    from clinreason.knowledge.evaluation import (
        assessor_agreement,
        double_graded_pairs,
        evaluate,
        paraphrase_pairs,
    )

    index = open_index()
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

