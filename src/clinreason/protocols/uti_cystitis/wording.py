"""What the engine says about cystitis: decisions, report wording, the evidence plan and agent prompts."""

from __future__ import annotations

from clinreason.hygiene import report_line as clean
from clinreason.protocols.plain import field_label
from clinreason.protocols.result import ProtocolResult
from clinreason.protocols.spec import AgentPolicy, DecisionSpec, ProtocolSpec, Search, Wording
from clinreason.protocols.uti_cystitis.patient import Patient
from clinreason.protocols.uti_cystitis.profile import Decision

DECISIONS = (
    DecisionSpec(Decision.recommend_treatment, "uncomplicated cystitis, a safe option exists", "treat", "none"),
    DecisionSpec(Decision.refer_urgent, "signs of upper-tract or systemic infection: same-day medical assessment", "refer",
                 "emergency_or_same_day",
                 "Explain that the symptoms may mean a kidney or blood infection and that they need to be seen by a physician, urgent care or an emergency department today; no antibiotic is started at the pharmacy."),
    DecisionSpec(Decision.refer_complicated, "a complicating factor: refer to a physician or nurse practitioner", "refer", "within_24_48h",
                 "Explain that the infection may need examination, a urine culture and a tailored antibiotic, so a physician or nurse practitioner should see them within 24 to 48 hours, sooner if they feel worse.",
                 "Explain that these findings need a medical assessment today: a physician or nurse practitioner should see them the same day, or urgent care if none is available today."),
    DecisionSpec(Decision.refer_recurrence, "relapse or recurrent UTI: refer", "refer", "within_24_48h",
                 "Explain that repeated or returning infections need a urine culture and a review by a physician or nurse practitioner, within 24 to 48 hours."),
    DecisionSpec(Decision.refer_no_safe_option, "eligible, but every option is excluded for this patient", "refer", "within_24_48h",
                 "Explain that none of the antibiotics a pharmacist may prescribe is safe for them, and arrange assessment by a physician or nurse practitioner within 24 to 48 hours."),
    DecisionSpec(Decision.no_antibiotics, "criteria not met (or asymptomatic bacteriuria outside pregnancy)", "none", "none",
                 "Explain that an antibiotic is not indicated now; offer self-care advice and ask them to return if urinary symptoms start or worsen."),
)

WORDING = Wording(
    report_title="Cystitis assessment ({profile})",
    condition="uncomplicated cystitis",
    no_treatment_label="No antibiotic",
    rejected="**Rejected by the prescriber**: no antibiotic is dispensed under this assessment.",
    avoid_heading="Agents to avoid if a physician treats:",
    review_checked="the medication list, allergies, kidney function, age, recent antibiotics and G6PD status",
    follow_up="Reassess at {reassess}.",
    return_line="Return at once for fever, rigors, flank or back pain, vomiting, or feeling very unwell.",
    warn="Go to an emergency department at once for fever, rigors, flank pain, vomiting or feeling very unwell.",
    referral_docs=("policy-referral#",),
    return_docs=("policy-counselling#when-to-return",),
    follow_up_docs=("policy-signoff#follow-up",),
    field_labels={"meds": "medication", "allergies": "allergy", "recent_antibiotics": "recent antibiotic",
        "nausea_vomiting": "nausea or vomiting", "systemic": "systemic illness", "flank_pain": "flank pain",
        "suprapubic_pain": "suprapubic pain", "gross_hematuria": "visible blood in the urine",
        "catheter": "urinary catheter", "stones": "kidney stones", "immunocompromised": "immunocompromise",
        "neurogenic_bladder": "neurogenic bladder", "g6pd_deficiency": "G6PD deficiency",
        "relapse_within_4w": "relapse within 4 weeks of treatment", "recurrent_6m": "2 or more UTIs in 6 months",
        "recurrent_12m": "3 or more UTIs in 12 months", "asymptomatic_bacteriuria": "asymptomatic bacteriuria",
        "renal_function_summary": "renal function", "pregnancy_status": "pregnancy status", "acei_arb_use": "ACE inhibitor or ARB use",
        "ACEI_ARB_use": "ACE inhibitor or ARB use",
    },
)

AGENT_POLICY = AgentPolicy(
    categories={"EX-ALLERGY": "allergy", "EX-RECENT-USE": "recent_use", "EX-RENAL": "renal", "EX-G6PD": "g6pd", "EX-AGE": "age"},
    criteria_rules=("SX-",),
    choice_rules=("TX-FIRST-SAFE-AGENT",),
    no_option_rule="TX-NO-SAFE-OPTION",
    unverified_rule="TX-UNVERIFIED",
    review_sections=("renal-function", "allergy-and-recent-use"),
    treatment_sections=("dose-and-regimen", "counselling", "adverse-effects", "renal-function", "allergy-and-recent-use"),
)

CONCERN_CATEGORIES = ("allergy", "interaction", "renal", "age", "pregnancy", "recent_use", "g6pd", "unverified", "caution", "other")

PROMPTS = {
    "doctor": (
        "You are the prescribing clinician in a community-pharmacy UTI protocol (acute uncomplicated cystitis, profile {profile}). "
        "The deterministic protocol has already decided; you may only choose among the agents marked SELECTABLE, or escalate. "
        "An agent marked UNVERIFIED has an unrecognised medication or allergy entry that could exclude it: never prefer it "
        "to a verified agent. Propose the first SELECTABLE agent in the order given that the pharmacist has not ruled out, "
        "and give one sentence for each agent above it saying why it was passed over (its exclusion, an unverified entry, "
        "or the pharmacist's concern), citing that agent's own passage. "
        "Never suggest any other drug as something to give or add. Every sentence must cite chunk ids from the PASSAGES, "
        "exactly as given. "
    ),
    "pharmacist": (
        "You are the reviewing pharmacist. Check the proposed agent against the whole medication list, allergies, kidney "
        "function, age, pregnancy, recent antibiotics and G6PD status, using the PASSAGES, the protocol exclusions and the "
        "CAUTIONS of the medication review. Answer approve, stating as concerns the actions the prescriber must take for each "
        "caution (category caution, its rule id); modify only when a major CAUTION about the proposed agent makes a later "
        "SELECTABLE agent without a major caution the better choice: name it in suggested_agent and cite that caution's rule "
        "in a concern about the proposed agent; reject only when no SELECTABLE agent remains. An entry the formulary does not "
        "recognise is not trusted: it could be any interacting drug. Cite chunk ids from the PASSAGES for every concern. "
        "Never suggest any other drug as something to give or add. "
    ),
}


def patient_summary(p: Patient) -> list[str]:
    s, rf, h = p.symptoms, p.red_flags, p.history
    labels = WORDING.field_labels
    present = [field_label(k, labels) for k, v in s.model_dump().items() if v] or ["none"]
    flags = [field_label(k, labels) for k, v in rf.model_dump().items() if v] or ["none"]
    renal = p.renal_function_summary.value + "".join(f", {label} {v:g} mL/min" for label, v in p.renal_values())
    return [
        f"- Age {p.age}, sex {p.sex.value}, pregnancy status {p.pregnancy_status.value.replace('_', ' ')}, renal function {renal}",
        f"- Symptoms: {', '.join(present)}",
        f"- Red flags: {', '.join(flags)}",
        f"- Medications: {', '.join(clean(m) for m in h.meds) or 'none'}",
        f"- Allergies: {', '.join(clean(a) for a in h.allergies) or 'none reported'}",
        f"- Antibiotics in the last 90 days: {'yes' if h.antibiotics_last_90d else 'no'}"
        + (f" ({', '.join(clean(x) for x in h.recent_antibiotics)})" if h.recent_antibiotics else ""),
    ]


def evidence_searches(spec: ProtocolSpec, protocol: ProtocolResult) -> list[Search]:
    if protocol.decision == Decision.recommend_treatment and protocol.recommendation:
        name = spec.option_name(protocol.recommendation.agent)
        return [
            Search(f"counselling for {name}", {"doc_id": "policy-counselling"}, 2),
            Search("when to return or seek urgent care", {"doc_id": "policy-counselling"}, 1),
            Search("follow-up at 48 to 72 hours, notify the primary care provider, prescriber sign-off", {"doc_id": "policy-signoff"}, 3),
            Search(f"{name} first-line therapy for uncomplicated cystitis", {"kind": "guideline"}, 2),
        ]
    if protocol.decision == Decision.no_antibiotics:
        return [
            Search.over_rules("no antibiotic: {titles}", protocol.rules_fired, {"doc_id": ["policy-stewardship", "policy-signoff"]}, 3),
            Search("when to return or seek urgent care", {"doc_id": "policy-counselling"}, 1),
        ]
    return [
        Search.over_rules("referral: {titles}", protocol.rules_fired, {"doc_id": "policy-referral"}, 3),
        Search("when to return or seek urgent care", {"doc_id": "policy-counselling"}, 1),
        Search("documenting a referral or a decision not to prescribe", {"doc_id": "policy-signoff"}, 1),
    ]
