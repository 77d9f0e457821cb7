"""Which passages a case needs, and why: the retrieve node's plan.

Rule and monograph passages are fetched by id (every fired rule and every
exclusion has its own chunk in the assessment's knowledge base); policy and
guideline context comes from the protocol's searches (`ProtocolSpec.evidence_searches`),
run inside that knowledge base and cached. Every text those searches embed is one of the finite
set `ProtocolSpec.possible_searches` enumerates, embedded at `kb build`, so no assessment loads the
embedding model. The state keeps chunk ids only.
"""

from __future__ import annotations

from pydantic import BaseModel

from clinreason.agents.context import monograph_chunk_for_rule
from clinreason.config import Settings
from clinreason.knowledge.corpus import monograph_doc_id
from clinreason.knowledge.retrieval import chunks_in, search_ids
from clinreason.protocols.result import ProtocolResult
from clinreason.protocols.spec import ProtocolSpec, scoped_id


class Evidence(BaseModel):
    chunk_id: str
    why: str  # "rule <id>", "monograph <option>", "search: ..."
    score: float | None = None


def gather_evidence(spec: ProtocolSpec, protocol: ProtocolResult, settings: Settings) -> list[Evidence]:
    scope = (protocol.protocol_id, protocol.profile_id)
    chunks = chunks_in(scope)  # every passage the plan cites lies in the assessment's knowledge base
    out: dict[str, Evidence] = {}

    def add(cid: str | None, why: str, score: float | None = None) -> None:
        if cid and cid in chunks and cid not in out:
            out[cid] = Evidence(chunk_id=cid, why=why, score=score)

    def rule(rule_id: str) -> str:
        return spec.rule_chunk_id(rule_id, protocol.profile_id)

    def section(option: str, slug: str) -> str:
        return scoped_id(*scope, f"{monograph_doc_id(option)}#{slug}")

    policy = spec.agent_policy
    for hit in protocol.rules_fired:
        add(rule(hit.rule_id), f"rule {hit.rule_id}")
    if protocol.unverified_entries:  # agents and the report cite the fail-safe rule for them
        add(rule(policy.unverified_rule), f"rule {policy.unverified_rule}")
    for caution in protocol.cautions:
        add(rule(caution.rule_id), f"rule {caution.rule_id}")
    for ev in protocol.options:
        add(section(ev.option, "dose-and-regimen"), f"monograph {ev.option}")
        for ex in ev.exclusions:
            add(rule(ex.rule_id), f"rule {ex.rule_id}")
            add(monograph_chunk_for_rule(ev.option, ex.rule_id, chunks, scope), f"monograph {ev.option} {ex.rule_id}")
    for option in protocol.allowed_options:
        for slug in policy.treatment_sections:
            add(section(option, slug), f"monograph {option}")
    for search in spec.evidence_searches(protocol):
        for cid, score in search_ids(search.query, search.k, search.filters, settings=settings, scope=scope, parts=search.parts):
            add(cid, f"search: {search.query}", score)
    return list(out.values())
