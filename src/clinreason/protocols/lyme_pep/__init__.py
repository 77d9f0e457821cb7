"""Lyme disease post-exposure prophylaxis after a tick bite (a single dose of doxycycline).

Spec: `../shared/protocol/lyme-pep.md`. Profiles CA-ON (OCP 2023) and US-IDSA (IDSA/AAN/ACR 2020)."""

from clinreason.protocols.lyme_pep.documents import render_documents
from clinreason.protocols.lyme_pep.evaluate import evaluate
from clinreason.protocols.lyme_pep.patient import Patient, check, parse_patient
from clinreason.protocols.lyme_pep.profile import PROTOCOL_ID, PROTOCOL_VERSION, Decision, LymeProfile
from clinreason.protocols.lyme_pep.wording import (
    AGENT_POLICY,
    CONCERN_CATEGORIES,
    DECISIONS,
    PROMPTS,
    WORDING,
    evidence_searches,
    patient_summary,
)
from clinreason.protocols.spec import ProtocolSpec

SPEC = ProtocolSpec(
    id=PROTOCOL_ID,
    version=PROTOCOL_VERSION,
    title="Lyme disease prophylaxis after a tick bite",
    package=__name__,
    input_model=Patient,
    parse=parse_patient,
    check=check,
    evaluate=evaluate,
    decisions=DECISIONS,
    profile_model=LymeProfile,
    render_documents=render_documents,
    evidence_searches=evidence_searches,
    patient_summary=patient_summary,
    wording=WORDING,
    agent_policy=AGENT_POLICY,
    prompts=PROMPTS,
    concern_categories=CONCERN_CATEGORIES,
)

__all__ = ["SPEC", "Decision", "Patient", "evaluate", "parse_patient"]
