"""Acute uncomplicated cystitis, as Ontario community pharmacists assess and prescribe for it.

Spec: `../shared/protocol/uti-ca-on.md`. Profile CA-ON (OCP 2022)."""

from clinreason.protocols.spec import ProtocolSpec, RetrievalHooks
from clinreason.protocols.uti_cystitis import retrieval
from clinreason.protocols.uti_cystitis.documents import render_documents
from clinreason.protocols.uti_cystitis.evaluate import evaluate
from clinreason.protocols.uti_cystitis.patient import Patient, parse_patient
from clinreason.protocols.uti_cystitis.profile import PROTOCOL_ID, PROTOCOL_VERSION, Decision, UtiProfile
from clinreason.protocols.uti_cystitis.wording import (
    AGENT_POLICY,
    CONCERN_CATEGORIES,
    DECISIONS,
    PROMPTS,
    WORDING,
    evidence_searches,
    patient_summary,
)

SPEC = ProtocolSpec(
    id=PROTOCOL_ID,
    version=PROTOCOL_VERSION,
    title="Acute uncomplicated cystitis",
    package=__name__,
    input_model=Patient,
    parse=parse_patient,
    evaluate=evaluate,
    decisions=DECISIONS,
    profile_model=UtiProfile,
    render_documents=render_documents,
    evidence_searches=evidence_searches,
    patient_summary=patient_summary,
    wording=WORDING,
    agent_policy=AGENT_POLICY,
    prompts=PROMPTS,
    concern_categories=CONCERN_CATEGORIES,
    retrieval=RetrievalHooks(
        link_numbers=retrieval.link_numbers,
        link_after_cues=retrieval.link_after_cues,
        expansion_terms=retrieval.expansion_terms,
        named_sources=retrieval.NAMED_SOURCES,
    ),
    # Records stored before protocols were plug-ins: the plan action and the rule policy's document id.
    legacy_plan_actions={"no_antibiotics": "no_treatment"},
    legacy_documents={"policy-uti-ca-on": "rules-ca-on"},
)

__all__ = ["SPEC", "Decision", "Patient", "evaluate", "parse_patient"]
