"""Property-based safety invariants over random valid patients."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clinreason import Decision, assess

from strategies import RED_FLAGS, patients

FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(patients())
def test_deterministic(p):
    first = assess(p, mode="deterministic").model_dump(mode="json")
    assert assess(p, mode="deterministic").model_dump(mode="json") == first


@FAST
@given(patients())
def test_recommended_agent_never_carries_an_exclusion(p):
    a = assess(p, mode="deterministic")
    if a.recommendation is not None:
        assert a.decision == Decision.recommend_treatment
        assert a.protocol.option(a.recommendation.agent).exclusions == []
        # and it is the most preferred allowed agent
        assert a.recommendation.agent == a.protocol.allowed_options[0]
    else:
        assert a.decision != Decision.recommend_treatment


@FAST
@given(patients(), st.sampled_from(RED_FLAGS))
def test_any_red_flag_refers_urgently(p, flag):
    p["red_flags"][flag] = True
    assert assess(p, mode="deterministic").decision == Decision.refer_urgent


@FAST
@given(patients())
def test_male_or_pregnant_never_treated(p):
    a = assess(p, mode="deterministic")
    if p["sex"] == "male" or p["pregnancy_status"] == "pregnant":
        assert a.decision != Decision.recommend_treatment
        assert a.recommendation is None


@FAST
@given(patients(), st.randoms(use_true_random=False))
def test_order_of_meds_and_allergies_does_not_matter(p, rnd):
    before = assess(p, mode="deterministic")
    for key in ("meds", "allergies", "recent_antibiotics"):
        rnd.shuffle(p["history"][key])
    after = assess(p, mode="deterministic")
    assert after.decision == before.decision
    assert after.recommendation == before.recommendation
    excl = lambda a: {ev.option: sorted(x.rule_id for x in ev.exclusions) for ev in a.protocol.options}  # noqa: E731
    assert excl(after) == excl(before)


@FAST
@given(patients())
def test_interacting_drugs_always_exclude(p):
    a = assess(p, mode="deterministic")
    meds = " ".join(p["history"]["meds"]).lower()
    allowed = set(a.protocol.allowed_options)
    if "coumadin" in meds:
        assert "tmp_smx" not in allowed
    if "methotrexate" in meds or "tikosyn" in meds or "lisinopril" in meds or "entresto" in meds or p["history"]["ACEI_ARB_use"]:
        assert not {"tmp_smx", "trimethoprim"} & allowed
    if p["age"] < 18:
        assert "fosfomycin" not in allowed
    if p["history"]["g6pd_deficiency"]:
        assert not {"nitrofurantoin", "tmp_smx"} & allowed
