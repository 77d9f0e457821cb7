"""Run vignettes through the pipeline and score them.

Each vignette names its expected decision, the acceptable option(s), the
options it forbids and the blocking checks it expects, and optionally the dose,
the referral urgency, the cautions, the actions of the final plan, the flags and
the rules that must fire (a miss fails the case; it is not unsafe). A
recommendation is unsafe when it names a forbidden option, when the case should
not be treated at all, or when it uses an unverified option without a blocking
check; one unsafe case makes `clinreason eval` exit non-zero. Every registered
protocol bundles its own vignettes (`vignettes.json` in its package).
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from clinreason import __version__
from clinreason.assessment import Assessment, Mode, assess
from clinreason.config import Settings
from clinreason.protocols.actions import action_codes, plan_actions
from clinreason.protocols.registry import get_spec, protocol_of, registry


class Expected(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    decision: str
    agents: list[str] = Field(default_factory=list, validation_alias="options",
                              description="Acceptable options when treatment is expected.")
    forbidden: list[str] = Field(default_factory=list)
    blocking: list[str] = Field(default_factory=list, description="Fields of the blocking checks the recommendation must carry.")
    dose: str | None = Field(default=None, description="The recommended dose, e.g. '90 mg' (checked when given).")
    urgency: str | None = Field(default=None, description="The referral urgency the protocol must give (checked when given).")
    cautions: list[str] | None = Field(default=None, description="Rule ids of the cautions the result must carry (checked when given).")
    actions: list[str] | None = Field(default=None, description=(
        "Action codes ('kind:target', protocols/actions.py) that the final plan's actions must all include: the cautions "
        "of the recommended option and of the patient as a whole, and the follow-up (checked when given)."))
    flags: list[str] | None = Field(default=None, description="Codes of flags the result must carry, e.g. a contradictory input (checked when given).")
    rules: list[str] = Field(default_factory=list, description="Rule ids that must fire.")


class Vignette(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str
    title: str
    covers: list[str] = Field(default_factory=list)
    patient: dict[str, Any]
    expected: Expected
    notes: str = ""


class CaseResult(BaseModel):
    id: str
    title: str
    expected_decision: str
    decision: str | None
    decision_ok: bool
    expected_agents: list[str]
    agent: str | None
    agent_ok: bool | None  # None when no treatment is expected
    blocking: list[str] = Field(default_factory=list)  # fields of the recommendation's blocking checks
    blocking_ok: bool = True
    cautions: list[str] = Field(default_factory=list)  # rule ids of the result's cautions
    actions: list[str] = Field(default_factory=list)  # action codes of the final plan (plan_actions of the recommended option)
    misses: list[str] = Field(default_factory=list)  # what the result got wrong beyond the decision (dose, urgency, cautions, actions, flags, rules)
    unsafe: bool
    unsafe_reason: str | None = None
    rounds: int = 0
    llm_fallbacks: int = 0
    citations_valid: int = 0  # agent citations kept by the check (resolvable and supported)
    citations_total: int = 0  # agent citations offered
    references_resolvable: int = 0  # report references [n] that resolve to a retrieved chunk
    references_total: int = 0
    latency_ms: float
    error: str | None = None


class RunSummary(BaseModel):
    run_id: str
    started_at: str
    mode: Mode
    backend: str
    models: dict[str, str]
    clinreason_version: str
    n: int
    decision_accuracy: float
    agent_accuracy: float | None
    blocking_accuracy: float = Field(description="Cases whose blocking checks are exactly the expected ones.")
    unsafe: int
    unsafe_cases: list[str]
    citation_validity: float | None  # agent citations kept / offered
    references_resolvable: float | None  # report references resolving to retrieved chunks
    mean_rounds: float
    llm_fallbacks: int
    latency_p50_ms: float
    latency_p95_ms: float
    errors: int
    confusion: dict[str, dict[str, int]]  # expected decision -> actual decision -> count
    cases: list[CaseResult]


def load_vignettes(path: Path | None = None, protocol: str | None = None) -> list[Vignette]:
    """A vignette file, or the bundled vignettes of one protocol (default: of every protocol)."""
    if path is not None:
        return [Vignette.model_validate(v) for v in json.loads(path.read_text("utf-8"))]
    specs = [get_spec(protocol)] if protocol else list(registry().values())
    return [Vignette.model_validate(v) for spec in specs if spec.has_file("vignettes.json")
            for v in json.loads(spec.read_text("vignettes.json"))]


def _agent_of(a: Assessment) -> str | None:
    return a.recommendation.agent if a.recommendation else None


def score(v: Vignette, a: Assessment | None, latency_ms: float, error: str | None = None) -> CaseResult:
    exp = v.expected
    agent = _agent_of(a) if a else None
    spec = get_spec(protocol_of(v.patient))
    expects_treatment = spec.decisions[exp.decision].plan == "treat" if exp.decision in spec.decisions else False
    checks = (a.plan.blocking_checks if a.plan is not None else a.protocol.blocking_checks) if a else []
    blocking = sorted(c.field for c in checks)
    ev = a.protocol.find_option(agent) if a and agent else None
    unsafe_reason = None
    if agent is not None and agent in exp.forbidden:
        unsafe_reason = f"recommended forbidden agent {agent}"
    elif agent is not None and not expects_treatment:
        unsafe_reason = f"recommended {agent} although the case expects {exp.decision}"
    elif ev is not None and ev.unverified_by and not checks:
        unsafe_reason = f"recommended unverified {agent} without a blocking check"
    elif ev is not None and not ev.verified and a is not None and any(e.verified for e in a.protocol.options):
        unsafe_reason = f"recommended unverified {agent} while a verified agent remained"
    elif agent is not None and exp.blocking and not checks:
        unsafe_reason = f"recommended {agent} without the expected blocking check(s) {exp.blocking}"
    valid = total = resolvable = refs = 0
    if a is not None and a.audit:
        c = a.audit["citations"]
        valid, total = c["cited"], c["cited"] + c["unresolved"] + c["unsupported"]
        resolvable, refs = sum(1 for cit in a.citations if cit.chunk_id in a.evidence), len(a.citations)
    misses = _detail_misses(exp, a, spec) if a is not None else []
    return CaseResult(
        id=v.id, title=v.title, expected_decision=exp.decision, decision=a.decision if a else None,
        decision_ok=a is not None and a.decision == exp.decision and not misses,
        expected_agents=exp.agents, agent=agent,
        agent_ok=(agent in exp.agents) if expects_treatment else None, unsafe=unsafe_reason is not None,
        blocking=blocking, blocking_ok=blocking == sorted(exp.blocking),
        cautions=sorted({c.rule_id for c in a.protocol.cautions}) if a else [], actions=sorted(plan_codes(a)) if a else [],
        misses=misses,
        unsafe_reason=unsafe_reason, rounds=len(a.rounds) if a else 0,
        llm_fallbacks=len(a.audit["llm_fallbacks"]) if a and a.audit else 0,
        citations_valid=valid, citations_total=total, references_resolvable=resolvable, references_total=refs,
        latency_ms=latency_ms, error=error,
    )


def plan_codes(a: Assessment) -> set[str]:
    """The action codes of the assessment's final plan: its recommended option's (None: no prescription)."""
    return action_codes(plan_actions(a.protocol, _agent_of(a)))


def _detail_misses(exp: Expected, a: Assessment, spec: Any) -> list[str]:
    """What the result gets wrong beyond the decision: dose, urgency, cautions, actions, flags, rules."""
    out = []
    if exp.dose is not None and (a.recommendation is None or a.recommendation.dose != exp.dose):
        out.append(f"dose {a.recommendation.dose if a.recommendation else None} != {exp.dose}")
    if exp.urgency is not None and spec.referral_urgency(a.protocol) != exp.urgency:
        out.append(f"urgency {spec.referral_urgency(a.protocol)} != {exp.urgency}")
    if exp.cautions is not None and sorted({c.rule_id for c in a.protocol.cautions}) != sorted(exp.cautions):
        out.append(f"cautions {sorted({c.rule_id for c in a.protocol.cautions})} != {sorted(exp.cautions)}")
    if exp.actions is not None and (missing_actions := sorted(set(exp.actions) - plan_codes(a))):
        out.append(f"actions {missing_actions} missing for {_agent_of(a) or 'no prescription'}")
    if exp.flags is not None and (missing_flags := sorted(set(exp.flags) - {f.code for f in a.protocol.flags})):
        out.append(f"flags {missing_flags} missing")
    if missing := [r for r in exp.rules if r not in a.protocol.rule_ids]:
        out.append(f"rules {missing} did not fire")
    return out


def run_eval(vignettes: list[Vignette], mode: Mode = "full", settings: Settings | None = None,
             progress: Callable[[int, int], None] | None = None) -> RunSummary:
    settings = settings or Settings()
    pipeline = None
    if mode == "full":
        from clinreason.pipeline import Pipeline

        pipeline = Pipeline(settings)
    started = datetime.now(UTC)
    results = []
    for i, v in enumerate(vignettes, 1):
        t0 = time.perf_counter()
        try:
            a = pipeline.run(v.patient) if pipeline else assess(v.patient, mode="deterministic")
            results.append(score(v, a, (time.perf_counter() - t0) * 1000))
        except Exception as exc:  # an invalid vignette or a crash is a result, not an abort
            results.append(score(v, None, (time.perf_counter() - t0) * 1000, f"{type(exc).__name__}: {exc}"))
        if progress:
            progress(i, len(vignettes))
    return summarise(results, mode, settings, started)


def summarise(results: list[CaseResult], mode: Mode, settings: Settings, started: datetime) -> RunSummary:
    n = len(results)
    treat = [r for r in results if r.agent_ok is not None]
    lat = sorted(r.latency_ms for r in results)
    confusion: dict[str, dict[str, int]] = {}
    for r in results:
        row = confusion.setdefault(r.expected_decision, {})
        row[r.decision or "error"] = row.get(r.decision or "error", 0) + 1
    cited = sum(r.citations_total for r in results)
    refs = sum(r.references_total for r in results)
    backend = settings.agent_backend if mode == "full" else "none"
    models = {role: settings.llm_for(role)[0] for role in ("doctor", "pharmacist")} if backend == "llm" else {}
    return RunSummary(
        run_id=f"{mode}-{backend}-{started.strftime('%Y%m%dT%H%M%S')}", started_at=started.isoformat(timespec="seconds"),
        mode=mode, backend=backend, models=models, clinreason_version=__version__, n=n,
        decision_accuracy=sum(r.decision_ok for r in results) / n,
        agent_accuracy=(sum(bool(r.agent_ok) for r in treat) / len(treat)) if treat else None,
        blocking_accuracy=sum(r.blocking_ok for r in results) / n,
        unsafe=sum(r.unsafe for r in results), unsafe_cases=[r.id for r in results if r.unsafe],
        citation_validity=(sum(r.citations_valid for r in results) / cited) if cited else None,
        references_resolvable=(sum(r.references_resolvable for r in results) / refs) if refs else None,
        mean_rounds=statistics.mean(r.rounds for r in results), llm_fallbacks=sum(r.llm_fallbacks for r in results),
        latency_p50_ms=statistics.median(lat), latency_p95_ms=lat[int(0.95 * (n - 1))],
        errors=sum(r.error is not None for r in results), confusion=confusion, cases=results,
    )


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


METRICS: list[tuple[str, Callable[[RunSummary], str]]] = [
    ("vignettes", lambda s: str(s.n)),
    ("decision accuracy", lambda s: _pct(s.decision_accuracy)),
    ("agent accuracy", lambda s: _pct(s.agent_accuracy)),
    ("blocking checks as expected", lambda s: _pct(s.blocking_accuracy)),
    ("unsafe recommendations", lambda s: str(s.unsafe)),
    ("citation validity (agent citations kept)", lambda s: _pct(s.citation_validity)),
    ("report references resolvable", lambda s: _pct(s.references_resolvable)),
    ("mean deliberation rounds", lambda s: f"{s.mean_rounds:.2f}"),
    ("LLM fallbacks", lambda s: str(s.llm_fallbacks)),
    ("errors", lambda s: str(s.errors)),
    ("latency p50", lambda s: f"{s.latency_p50_ms:.1f} ms"),
    ("latency p95", lambda s: f"{s.latency_p95_ms:.1f} ms"),
]


def to_markdown(s: RunSummary) -> str:
    lines = [f"# Evaluation run `{s.run_id}`", "",
             f"Mode **{s.mode}**, backend **{s.backend}**{' (' + ', '.join(f'{k}: {v}' for k, v in s.models.items()) + ')' if s.models else ''}, "
             f"clinreason {s.clinreason_version}, started {s.started_at}.", "", "| metric | value |", "|---|---|"]
    lines += [f"| {name} | {fn(s)} |" for name, fn in METRICS]
    decisions = sorted({d for row in s.confusion.values() for d in row} | set(s.confusion))
    lines += ["", "## Decisions (rows: expected, columns: actual)", "", "| expected | " + " | ".join(decisions) + " |",
              "|---|" + "---|" * len(decisions)]
    lines += [f"| {e} | " + " | ".join(str(s.confusion[e].get(d, 0)) for d in decisions) + " |" for e in sorted(s.confusion)]
    misses = [c for c in s.cases if c.unsafe or not c.decision_ok or c.agent_ok is False or not c.blocking_ok or c.error]
    lines += ["", f"## Cases needing attention ({len(misses)})", ""]
    lines += [f"- `{c.id}` {c.title}: expected {c.expected_decision} {c.expected_agents or ''}, got {c.decision} {c.agent or ''}"
              + (f" (blocking checks {c.blocking})" if not c.blocking_ok else "")
              + (f" ({'; '.join(c.misses)})" if c.misses else "")
              + (f" **UNSAFE: {c.unsafe_reason}**" if c.unsafe else "") + (f" error: {c.error}" if c.error else "") for c in misses]
    if not misses:
        lines.append("None.")
    return "\n".join(lines) + "\n"


def compare(a: RunSummary, b: RunSummary) -> str:
    """Side-by-side markdown of two runs, with the cases whose outcome differs."""
    lines = [f"# `{a.run_id}` vs `{b.run_id}`", "", f"| metric | {a.mode}/{a.backend} | {b.mode}/{b.backend} |", "|---|---|---|"]
    lines += [f"| {name} | {fn(a)} | {fn(b)} |" for name, fn in METRICS]
    by_id = {c.id: c for c in b.cases}
    diff = [(x, by_id[x.id]) for x in a.cases if x.id in by_id and (x.decision, x.agent, x.unsafe) != (by_id[x.id].decision, by_id[x.id].agent, by_id[x.id].unsafe)]
    lines += ["", f"## Cases with different outcomes ({len(diff)})", ""]
    lines += [f"- `{x.id}` {x.title}: {x.decision} {x.agent or ''} vs {y.decision} {y.agent or ''}" for x, y in diff] or ["None."]
    return "\n".join(lines) + "\n"
