"""Which passages a case needs, and why: the retrieve node's plan.

Rule and monograph passages are fetched by id (every fired rule and every
exclusion has its own chunk); policy and guideline context comes from hybrid
searches whose results are cached. The state keeps chunk ids only.
"""

from __future__ import annotations

from pydantic import BaseModel

from clinreason.agents.context import monograph_chunk_for_rule
from clinreason.config import Settings
from clinreason.knowledge.corpus import monograph_doc_id, rule_chunk_id
from clinreason.knowledge.formulary import load_formulary
from clinreason.knowledge.retrieval import chunk_by_id, search_ids
from clinreason.protocols.result import Decision, ProtocolResult

TREATMENT_SECTIONS = ("dose-and-regimen", "counselling", "adverse-effects", "renal-function", "allergy-and-recent-use")


class Evidence(BaseModel):
    chunk_id: str
    why: str  # "rule SX-DYSURIA", "monograph fosfomycin", "search: ..."
    score: float | None = None


def _searches(protocol: ProtocolResult) -> list[tuple[str, dict, int]]:
    names = {a: info.name for a, info in load_formulary().agents.items()}
    titles = "; ".join(h.title for h in protocol.rules_fired)
    if protocol.decision is Decision.recommend_treatment and protocol.recommendation:
        agent = protocol.recommendation.agent
        return [
            (f"counselling for {names[agent]}", {"doc_id": "policy-counselling"}, 2),
            ("when to return or seek urgent care", {"doc_id": "policy-counselling"}, 1),
            ("follow-up at 48 to 72 hours, notify the primary care provider, prescriber sign-off", {"doc_id": "policy-signoff"}, 3),
            (f"{names[agent]} first-line therapy for uncomplicated cystitis", {"kind": "guideline"}, 2),
        ]
    if protocol.decision is Decision.no_antibiotics:
        return [
            (f"no antibiotic: {titles}", {"doc_id": ["policy-stewardship", "policy-signoff"]}, 3),
            ("when to return or seek urgent care", {"doc_id": "policy-counselling"}, 1),
        ]
    return [
        (f"referral: {titles}", {"doc_id": "policy-referral"}, 3),
        ("when to return or seek urgent care", {"doc_id": "policy-counselling"}, 1),
        ("documenting a referral or a decision not to prescribe", {"doc_id": "policy-signoff"}, 1),
    ]


def gather_evidence(protocol: ProtocolResult, settings: Settings) -> list[Evidence]:
    chunks = chunk_by_id()
    out: dict[str, Evidence] = {}

    def add(cid: str | None, why: str, score: float | None = None) -> None:
        if cid and cid in chunks and cid not in out:
            out[cid] = Evidence(chunk_id=cid, why=why, score=score)

    for hit in protocol.rules_fired:
        add(rule_chunk_id(hit.rule_id, protocol.profile_id), f"rule {hit.rule_id}")
    if protocol.unverified_entries:  # agents and the report cite the fail-safe rule for them
        add(rule_chunk_id("TX-UNVERIFIED", protocol.profile_id), "rule TX-UNVERIFIED")
    for ev in protocol.agents:
        add(f"{monograph_doc_id(ev.agent)}#dose-and-regimen", f"monograph {ev.agent}")
        for ex in ev.exclusions:
            add(rule_chunk_id(ex.rule_id, protocol.profile_id), f"rule {ex.rule_id}")
            add(monograph_chunk_for_rule(ev.agent, ex.rule_id, chunks), f"monograph {ev.agent} {ex.rule_id}")
    for agent in protocol.allowed_agents:
        for section in TREATMENT_SECTIONS:
            add(f"{monograph_doc_id(agent)}#{section}", f"monograph {agent}")
    for query, filters, k in _searches(protocol):
        for cid, score in search_ids(query, k, filters, settings=settings):
            add(cid, f"search: {query}", score)
    return list(out.values())
