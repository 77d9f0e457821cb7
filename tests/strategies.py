"""Hypothesis strategies shared by the protocol and graph property tests."""

from __future__ import annotations

from hypothesis import strategies as st

MEDS = ["Lisinopril 10 mg daily", "Coumadin 2.5mg", "Entresto 49/51 mg BID", "methotrexate 15 mg weekly",
        "Tikosyn 250 mcg", "HCTZ 25 mg", "spironolactone", "ibuprofen 400 mg", "metformin", "vitamin D", "Hyzaar"]
ALLERGIES = ["Macrobid (hives)", "sulfa", "Bactrim", "Monurol", "penicillin", "trimethoprim", "latex"]
RECENT = ["Septra DS", "nitrofurantoin", "ciprofloxacin", "fosfomycin", "trimethoprim"]
RED_FLAGS = ("fever", "rigors", "flank_pain", "back_pain", "nausea_vomiting", "systemic")

bools = st.booleans()


@st.composite
def patients(draw) -> dict:
    sex = draw(st.sampled_from(["female", "male", "other", "unknown"]))
    pregnancy = draw(st.sampled_from(["no", "not_pregnant", "not_applicable", "unknown"] + (["pregnant"] if sex != "male" else [])))
    symptoms = {k: draw(bools) for k in ("dysuria", "urgency", "frequency", "suprapubic_pain", "hematuria",
                                         "confusion", "delirium", "gross_hematuria", "vaginal_discharge")}
    urinary = any(symptoms[k] for k in ("dysuria", "urgency", "frequency", "suprapubic_pain", "hematuria"))
    recent = draw(st.lists(st.sampled_from(RECENT), max_size=2, unique=True))
    p = {
        "age": draw(st.integers(0, 120)),
        "sex": sex,
        "pregnancy_status": pregnancy,
        "renal_function_summary": draw(st.sampled_from(["normal", "impaired", "failure", "unknown"])),
        "symptoms": symptoms,
        "red_flags": {k: draw(st.booleans() if draw(st.integers(0, 4)) == 0 else st.just(False)) for k in RED_FLAGS},
        "history": {
            "antibiotics_last_90d": bool(recent) or draw(bools),
            "allergies": draw(st.lists(st.sampled_from(ALLERGIES), max_size=3, unique=True)),
            "meds": draw(st.lists(st.sampled_from(MEDS), max_size=4, unique=True)),
            "ACEI_ARB_use": draw(bools),
            "catheter": draw(st.booleans() if draw(st.integers(0, 3)) == 0 else st.just(False)),
            "stones": False,
            "immunocompromised": False,
            "g6pd_deficiency": draw(bools),
            "recent_antibiotics": recent,
        },
        "recurrence": {"relapse_within_4w": draw(bools), "recurrent_6m": False, "recurrent_12m": False},
        "locale_code": "CA-ON",
        "asymptomatic_bacteriuria": (not urinary) and draw(bools),
    }
    egfr = draw(st.none() | st.floats(0, 150, allow_nan=False))
    if egfr is not None:
        p["egfr_mL_min"] = egfr
    return p


@st.composite
def eligible_patients(draw) -> dict:
    """Patients who reach agent selection: the doctor/pharmacist loop runs for them."""
    p = draw(patients())
    p.update(sex="female", pregnancy_status=draw(st.sampled_from(["no", "not_pregnant"])), age=draw(st.integers(16, 90)),
             renal_function_summary="normal", asymptomatic_bacteriuria=False)
    p.pop("egfr_mL_min", None)
    p["red_flags"] = {k: False for k in RED_FLAGS}
    p["symptoms"].update(dysuria=True, confusion=False, delirium=False, gross_hematuria=False, vaginal_discharge=False)
    p["history"].update(catheter=False)
    p["recurrence"]["relapse_within_4w"] = False
    return p
