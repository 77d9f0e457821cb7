"""The evidence plan searches only for texts `kb build` embedded (issue 20, part 1): a patient whose
combination of fired rules no one has seen loads no embedding model, and a cold process serving a
cached plan imports neither numpy nor Chroma (part 3)."""

from __future__ import annotations

import json
import subprocess
import sys
from functools import cache

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from patients import BASE_PATIENT
from strategies import patients as cystitis_patients

from clinreason.errors import InvalidPatient
from clinreason.protocols.registry import get_spec, resolve

SYMPTOMS = ("erythema_migrans", "fever", "chills", "headache", "stiff_neck", "fatigue", "decreased_appetite",
            "muscle_joint_aches", "joint_swelling", "swollen_lymph_nodes")


@st.composite
def tick_bites(draw) -> dict:
    """Lyme requests across every decision: symptoms, unmet criteria, contraindications, the tick still attached."""
    attached = draw(st.booleans())
    tick = {"still_attached": attached, "estimated_hours_attached": draw(st.sampled_from([10, 24, 30, 36, 48])),
            "higher_risk_area": draw(st.booleans()), "location": "Kingston, ON"}
    if not attached:
        tick["hours_since_removal"] = draw(st.sampled_from([5, 40, 72, 80]))
    sex = draw(st.sampled_from(["female", "male"]))
    return {"protocol": "lyme-pep", "locale_code": draw(st.sampled_from(["CA-ON", "US"])), "age": draw(st.integers(2, 90)),
            "sex": sex, "pregnancy_status": draw(st.sampled_from(["not_pregnant", "pregnant"])) if sex == "female" else "not_applicable",
            "breastfeeding": False, "weight_kg": 70, "tick": tick,
            "symptoms": {k: draw(st.integers(0, 3)) == 0 for k in SYMPTOMS},
            "history": {"allergies": draw(st.lists(st.sampled_from(["doxycycline", "penicillin", "Minocin"]), max_size=2, unique=True)),
                        "meds": draw(st.lists(st.sampled_from(["Accutane 40 mg", "warfarin 5 mg", "Tums"]), max_size=2, unique=True))}}


@cache
def enumerated(protocol: str) -> dict[str, set[str]]:
    """profile id -> every query text `possible_searches` says the plan may embed."""
    out: dict[str, set[str]] = {}
    for profile, search in get_spec(protocol).possible_searches():
        out.setdefault(profile, set()).update(search.parts or (search.query,))
    return out


def assert_plan_enumerated(request: dict) -> None:
    try:
        req = resolve(request)
    except InvalidPatient:
        return
    result = req.evaluate()
    known = enumerated(req.protocol_id)[result.profile_id]
    for search in req.spec.evidence_searches(result):
        texts = search.parts or (search.query,)
        assert set(texts) <= known, (result.decision, [h.rule_id for h in result.rules_fired], set(texts) - known)
        if len(result.rules_fired) > 1 and len(search.parts) > 1:  # one part per fired rule, none a join of two
            assert len(search.parts) == len(result.rules_fired)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cystitis_patients())
def test_every_cystitis_search_is_enumerated(patient: dict) -> None:
    assert_plan_enumerated(patient)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tick_bites())
def test_every_lyme_search_is_enumerated(patient: dict) -> None:
    assert_plan_enumerated(patient)


def test_a_search_over_several_rules_keeps_the_joined_query_for_bm25_and_links() -> None:
    from clinreason.protocols.result import RuleHit
    from clinreason.protocols.spec import Search

    hits = [RuleHit(rule_id="A", title="Red flag: fever", detail=""), RuleHit(rule_id="B", title="Red flag: rigors", detail="")]
    s = Search.over_rules("referral: {titles}", hits, {"doc_id": "policy-referral"}, 3)
    assert s.query == "referral: Red flag: fever; Red flag: rigors"
    assert s.parts == ("referral: Red flag: fever", "referral: Red flag: rigors")


# Patients whose fired rules no bundled sample or vignette combines: three red flags; a catheter with
# stones and renal dysfunction; four Lyme symptoms with the tick still attached; three unmet criteria.
NOVEL = [
    {**BASE_PATIENT, "red_flags": {**BASE_PATIENT["red_flags"], "rigors": True, "back_pain": True, "systemic": True}},
    {**BASE_PATIENT, "renal_function_summary": "impaired", "history": {**BASE_PATIENT["history"], "catheter": True, "stones": True}},
    {"protocol": "lyme-pep", "locale_code": "US", "age": 50, "sex": "male", "pregnancy_status": "not_applicable",
     "breastfeeding": False, "weight_kg": 80,
     "tick": {"still_attached": True, "estimated_hours_attached": 40, "higher_risk_area": True},
     "symptoms": {k: k in ("chills", "fatigue", "joint_swelling", "swollen_lymph_nodes") for k in SYMPTOMS},
     "history": {"allergies": [], "meds": []}},
    {"protocol": "lyme-pep", "locale_code": "CA-ON", "age": 30, "sex": "female", "pregnancy_status": "not_pregnant",
     "breastfeeding": False, "weight_kg": 60,
     "tick": {"still_attached": False, "hours_since_removal": 90, "estimated_hours_attached": 10, "higher_risk_area": False},
     "symptoms": {k: False for k in SYMPTOMS}, "history": {"allergies": [], "meds": []}},
]

# Gathers the evidence of each request given as JSON, then prints the model loads and heavy modules.
PROBE = """
import json, sys
from clinreason.config import Settings
from clinreason.graph.evidence import gather_evidence
from clinreason.knowledge import retrieval
from clinreason.protocols.registry import resolve
ids = []
for request in json.loads(sys.argv[1]):
    req = resolve(request)
    ids.append([e.chunk_id for e in gather_evidence(req.spec, req.evaluate(), Settings())])
loads = sum(e.model_loads for e in retrieval._embedders.values())
heavy = [m for m in ("torch", "sentence_transformers", "numpy", "chromadb", "bm25s") if m in sys.modules]
print("PROBE " + json.dumps({"loads": loads, "heavy": heavy, "ids": ids}))
"""


def probe(requests: list[dict]) -> dict:
    done = subprocess.run([sys.executable, "-c", PROBE, json.dumps(requests)], capture_output=True, text=True, timeout=600,
                          stdin=subprocess.DEVNULL)
    line = next((x for x in done.stdout.splitlines() if x.startswith("PROBE ")), None)
    assert line, done.stderr[-3000:]
    return json.loads(line.removeprefix("PROBE "))


@pytest.fixture(scope="module")
def built(kb_index) -> None:
    """`kb build` of the session data dir: every knowledge base indexed, every plan text embedded."""
    from clinreason.config import get_settings
    from clinreason.knowledge.corpus import all_scopes
    from clinreason.knowledge.retrieval import get_index, missing_evidence_texts, prepare_evidence

    for scope in all_scopes():
        get_index(scope=scope)
        prepare_evidence(get_settings(), scope)
        assert missing_evidence_texts(get_settings(), scope) == []


def test_the_novel_patients_are_novel() -> None:
    from clinreason.evaluation.harness import load_vignettes
    from clinreason.samples import load_sample, sample_index

    def fired(request: dict) -> tuple[str, ...]:  # the profile too: each profile's knowledge base has its own caches
        result = resolve(request).evaluate()
        return (result.profile_id, *(h.rule_id for h in result.rules_fired))

    seen = {fired(load_sample(n)) for n in sample_index()} | {fired(v.patient) for v in load_vignettes()}
    for request in NOVEL:
        assert len(fired(request)) >= 4 and fired(request) not in seen


def test_a_novel_rule_combination_loads_no_model(built) -> None:
    out = probe(NOVEL)
    assert out["loads"] == 0
    assert "torch" not in out["heavy"] and "sentence_transformers" not in out["heavy"]
    assert all(ids for ids in out["ids"])


def test_a_cold_process_serving_cached_plans_imports_no_numpy_or_chroma(built) -> None:
    from clinreason.samples import load_sample

    requests = [load_sample("catheter"), load_sample("lyme-stiff-neck"), *NOVEL]
    first = probe(requests)  # fills the result cache (a miss opens the index: numpy, Chroma, BM25)
    again = probe(requests)
    assert again == {"loads": 0, "heavy": [], "ids": first["ids"]}
