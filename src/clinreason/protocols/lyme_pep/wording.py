"""What the engine says about Lyme disease prophylaxis: decisions, report wording, the evidence
plan and agent prompts."""

from __future__ import annotations

from clinreason.hygiene import report_line as clean
from clinreason.protocols.plain import field_label
from clinreason.protocols.lyme_pep.patient import Patient
from clinreason.protocols.lyme_pep.profile import Decision
from clinreason.protocols.result import ProtocolResult
from clinreason.protocols.spec import AgentPolicy, DecisionSpec, ProtocolSpec, Search, Wording

WATCH = ("watch for a spreading red rash, fever, chills, headache, stiff neck, tiredness or aching muscles and joints "
         "for 30 days after the bite")
DECISIONS = (
    DecisionSpec(Decision.recommend_prophylaxis, "all high-risk criteria met and doxycycline can be given", "treat", "none"),
    DecisionSpec(Decision.refer_symptomatic, "symptoms that may be Lyme disease: refer (prophylaxis is not treatment)", "refer",
                 "within_24_48h",
                 "Explain that these symptoms may mean the infection has already started, that a single preventive dose "
                 "would not treat it, and that a physician or nurse practitioner should see them within 24 to 48 hours.",
                 "Explain that a stiff neck after a tick bite needs a medical assessment today: a physician or nurse practitioner "
                 "the same day, or urgent care or an emergency department if none is available."),
    DecisionSpec(Decision.refer_contraindicated, "criteria met, but doxycycline cannot be given for this patient: refer", "refer",
                 "within_24_48h",
                 "Explain that the bite meets the criteria for a preventive dose but doxycycline is not safe for them, so a "
                 "physician or nurse practitioner should decide within 24 to 48 hours; no other antibiotic is given at the pharmacy."),
    DecisionSpec(Decision.no_prophylaxis, "a high-risk criterion is not met: no antibiotic; watch for symptoms for 30 days", "none",
                 "none", f"Explain that a preventive antibiotic is not indicated for this bite, and ask them to {WATCH} and to "
                         "see a physician or nurse practitioner if any appear."),
)

POLICIES = ("policy-lyme-ca-on", "policy-lyme-us-idsa")
WORDING = Wording(
    report_title="Lyme disease prophylaxis assessment ({profile})",
    condition="Lyme disease prophylaxis after a tick bite",
    no_treatment_label="No prophylaxis",
    rejected="**Rejected by the prescriber**: no doxycycline is dispensed under this assessment.",
    avoid_heading="Why doxycycline is not given:",
    review_checked="the medication list (retinoids, antacids and minerals, anticoagulants), allergies, pregnancy and breastfeeding",
    follow_up="{reassess}.",
    return_line="See a physician or nurse practitioner at once for a spreading rash, fever, severe headache, stiff neck, "
                "facial weakness or a swollen joint.",
    warn="Seek care the same day for a stiff neck, severe headache, facial weakness or a spreading rash.",
    referral_docs=tuple(f"{p}#" for p in POLICIES),
    return_docs=tuple(f"{p}#what-to-tell" for p in POLICIES) + tuple(f"{p}#no-prophylaxis" for p in POLICIES),
    follow_up_docs=tuple(f"{p}#follow-up" for p in POLICIES),
    warn_same_day="If they cannot be seen today, or a stiff neck, severe headache or facial weakness appears, they go to an emergency department at once.",
    field_labels={"meds": "medication", "allergies": "allergy", "recent_antibiotics": "recent antibiotic","erythema_migrans": "erythema migrans (expanding rash)", "stiff_neck": "stiff neck",
                  "muscle_joint_aches": "muscle or joint aches", "joint_swelling": "joint swelling",
                  "decreased_appetite": "decreased appetite", "higher_risk_area": "bite in a higher-risk area",
                  "still_attached": "tick still attached", "pregnancy_status": "pregnancy status"},
)

AGENT_POLICY = AgentPolicy(
    categories={"CI-TETRACYCLINE-ALLERGY": "allergy", "CI-PREGNANT": "pregnancy", "CI-RETINOID": "interaction"},
    criteria_rules=("HR-",),
    choice_rules=("TX-PROPHYLAXIS-ADULT", "TX-PROPHYLAXIS-CHILD"),
    no_option_rule=None,
    unverified_rule="TX-UNVERIFIED",
    review_sections=("pregnancy-and-lactation", "allergy-and-cross-reactivity"),
    treatment_sections=("dose-and-regimen", "counselling", "adverse-effects", "pregnancy-and-lactation", "allergy-and-cross-reactivity"),
)

CONCERN_CATEGORIES = ("allergy", "interaction", "pregnancy", "lactation", "caution", "unverified", "other")

PROMPTS = {
    "doctor": (
        "You are the prescribing clinician in a community-pharmacy protocol for antibiotic prophylaxis of Lyme disease after a "
        "tick bite (profile {profile}). The deterministic protocol has already decided; you may only choose the option marked "
        "SELECTABLE (a single dose of doxycycline), or escalate. An option marked UNVERIFIED has an unrecognised medication or "
        "allergy entry that could exclude it. Never suggest any other drug as something to give or add. Every sentence must "
        "cite chunk ids from the PASSAGES, exactly as given. "
    ),
    "pharmacist": (
        "You are the reviewing pharmacist. Check the proposed single dose of doxycycline against the whole medication list, "
        "allergies (any tetracycline), pregnancy and breastfeeding, using the PASSAGES, the protocol's exclusions and the "
        "CAUTIONS of the medication review. Approve, stating as concerns the actions the prescriber and patient must take "
        "for each caution (category caution, its rule id); reject only when no SELECTABLE option remains. An entry the "
        "formulary does not recognise is not trusted: it could be an interacting drug. Cite chunk ids from the PASSAGES for "
        "every concern. Never suggest any other drug as something to give or add. "
    ),
}


def patient_summary(p: Patient) -> list[str]:
    t, h = p.tick, p.history
    present = [field_label(k, WORDING.field_labels) for k, v in p.symptoms.model_dump().items() if v] or ["none"]
    removed = "still attached at the visit (counts as 0 h)" if t.still_attached else f"removed {t.hours_since_removal:g} h ago"
    weight = f", weight {p.weight_kg:g} kg" if p.weight_kg is not None else ""
    where = f" ({clean(t.location)})" if t.location else ""
    return [
        f"- Age {p.age}, sex {p.sex.value}, pregnancy status {p.pregnancy_status.value.replace('_', ' ')}, breastfeeding "
        f"{'yes' if p.breastfeeding else 'no'}{weight}",
        f"- Tick: {removed}; attached about {t.estimated_hours_attached:g} h; higher-risk area "
        f"{'yes' if t.higher_risk_area else 'no'}{where}",
        f"- Symptoms: {', '.join(present)}",
        f"- Medications: {', '.join(clean(m) for m in h.meds) or 'none'}",
        f"- Allergies: {', '.join(clean(a) for a in h.allergies) or 'none reported'}",
    ]


def evidence_searches(spec: ProtocolSpec, protocol: ProtocolResult) -> list[Search]:
    policy = f"policy-lyme-{protocol.profile_id.lower()}"
    if protocol.decision == Decision.recommend_prophylaxis:
        return [
            Search("counselling for a single dose of doxycycline: water, upright, food, sun, antacids and minerals", {"doc_id": policy}, 2),
            Search("follow-up: watch for symptoms for 30 days, notify the primary care provider, prescriber sign-off", {"doc_id": policy}, 2),
            Search("single-dose doxycycline prophylaxis after a high-risk tick bite", {"kind": "guideline"}, 2),
        ]
    if protocol.decision == Decision.no_prophylaxis:
        return [
            Search.over_rules("no prophylaxis: {titles}; watch for symptoms for 30 days", protocol.rules_fired, {"doc_id": policy}, 3),
            Search("follow-up: watch for symptoms for 30 days after the bite", {"doc_id": policy}, 1),
        ]
    return [
        Search.over_rules("referral: {titles}", protocol.rules_fired, {"doc_id": policy}, 3),
        Search("what to tell a patient who is referred, and follow-up for 30 days", {"doc_id": policy}, 2),
    ]
