"""What is computed once and reused (match caches, the first word of an entry, the rule index, a
profile's regimens and rule titles) gives exactly what computing it afresh gives, for repeated
entries too."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clinreason import assess
from clinreason.formulary import core, tokens
from clinreason.protocols.profile import load_rules
from clinreason.protocols.registry import get_spec, registry

from strategies import ALLERGIES, MEDS, patients

SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SPECS = sorted(registry())


def _clear() -> None:
    for cache in (core._match_cached, core._find_cached, core._first_token):
        cache.cache_clear()


@SETTINGS
@given(patients(), st.lists(st.sampled_from(MEDS + ["Frobnicol 5 mg", "wafarin 5mg", "Lisinopril 10 mg daily"]), min_size=1, max_size=3),
       st.lists(st.sampled_from(ALLERGIES), max_size=2))
def test_repeated_entries_give_the_result_of_a_cold_run(p, repeated, allergy):
    """The same entry twice (or in two lists) is read once and reused; the result is what a process
    with every cache empty computes."""
    p = json.loads(json.dumps(p))
    p["history"]["meds"] = p["history"]["meds"] + repeated + repeated
    p["history"]["allergies"] = list(dict.fromkeys(p["history"]["allergies"] + allergy))
    _clear()
    cold = assess(p, mode="deterministic").model_dump(mode="json")
    warm = assess(p, mode="deterministic").model_dump(mode="json")
    assert warm == cold
    meds = cold["protocol"]["medications"]
    n = len(repeated)
    assert meds[-n:] == meds[-2 * n:-n]  # each repeat matched exactly as its first occurrence


@SETTINGS
@given(st.text(max_size=40))
def test_first_token_is_the_first_of_tokens(text):
    _clear()
    cold = core._first_token(text)
    assert core._first_token(text) == cold == (tokens(text)[:1] or ("",))[0]


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(SPECS), st.data())
def test_rule_index_finds_exactly_the_rules_that_trigger(protocol, data):
    f = get_spec(protocol).formulary
    drug = data.draw(st.sampled_from(sorted(f.drugs)))
    extra = data.draw(st.lists(st.sampled_from(sorted(f.classes)), max_size=2))
    ingredients, classes = sorted(f.ingredients_of(drug)), sorted(f.classes_of(drug) | set(extra))
    assert f.interactions_triggered(ingredients, classes) == {r.id for r in f.interactions if r.triggered_by(ingredients, classes)}
    assert f.cautions_triggered(ingredients, classes) == {r.id for r in f.cautions if r.triggered_by(ingredients, classes)}


def test_rule_index_against_a_known_interaction():
    f = get_spec("uti-cystitis").formulary
    m = f.match("Lisinopril 10 mg daily")
    fired = f.interactions_triggered(m.ingredients, m.classes)
    assert fired and all(any(o in ("tmp_smx", "trimethoprim") for o in r.excludes) for r in f.interactions if r.id in fired)
    assert f.interactions_triggered([], []) == frozenset()


@given(st.sampled_from(SPECS))
def test_regimens_and_titles_are_what_the_profile_states(protocol):
    spec = get_spec(protocol)
    for profile in spec.profiles.values():
        for option, regimen in profile.regimens.items():
            assert profile.regimen(option).model_dump() == {"agent": option, **regimen.model_dump()}
        for rule in load_rules(spec.package).values():
            assert profile.rule_title(rule) == rule.title.format(**profile.params)
            assert profile.rule_title(rule) == spec.rule_title(rule.id, profile)
