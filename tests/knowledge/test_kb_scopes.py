"""A knowledge base per protocol and profile: scoped chunk ids, retrieval inside the assessment's
own knowledge base, rule passages with that profile's numbers, and the audit's kb version."""

from __future__ import annotations

import re

import pytest

from clinreason import assess
from clinreason.knowledge.chunking import all_chunks, current_kb_version, every_chunk
from clinreason.knowledge.corpus import all_scopes
from clinreason.knowledge.retrieval import chunk_by_id, get_index, search_ids
from clinreason.protocols.registry import get_spec, registry

LYME_ON, LYME_US = ("lyme-pep", "CA-ON"), ("lyme-pep", "US-IDSA")


def bite(locale: str, **over) -> dict:
    p = {"protocol": "lyme-pep", "locale_code": locale, "age": 40, "sex": "male", "pregnancy_status": "not_applicable",
         "breastfeeding": False, "weight_kg": 80,
         "tick": {"still_attached": False, "hours_since_removal": 10, "estimated_hours_attached": 20, "higher_risk_area": True},
         "symptoms": dict.fromkeys(("erythema_migrans", "fever", "chills", "headache", "stiff_neck", "fatigue",
                                    "decreased_appetite", "muscle_joint_aches", "joint_swelling", "swollen_lymph_nodes"), False),
         "history": {"allergies": [], "meds": []}}
    p.update(over)
    return p


def test_every_protocol_profile_pair_is_a_knowledge_base_with_scoped_ids() -> None:
    assert set(all_scopes()) == {("uti-cystitis", "CA-ON"), LYME_ON, LYME_US}
    for scope in all_scopes():
        chunks = all_chunks(scope)
        assert chunks and all(c.id.startswith(f"{scope[0]}/{scope[1]}/") and c.scope == scope for c in chunks)
    assert len(chunk_by_id()) == sum(len(all_chunks(s)) for s in all_scopes())  # unique across knowledge bases


def test_chunk_by_id_holds_every_chunk_and_nothing_else() -> None:
    """What a dict of `every_chunk` by id held, in its order, though it chunks a knowledge base on first lookup."""
    eager = {c.id: c for c in every_chunk()}
    chunks = chunk_by_id()
    assert list(chunks.items()) == list(eager.items()) and len(chunks) == len(eager) and chunks == eager
    uti = next(cid for cid in eager if cid.startswith("uti-cystitis/CA-ON/"))
    absent = ["", uti.split("/", 2)[2], "uti-cystitis/CA-ON", "uti-cystitis/CA-ON/", uti.replace("/CA-ON/", "/US-IDSA/"),
              uti.replace("uti-cystitis/", "no-such-protocol/"), uti + "-x", None,
              "uti-cystitis/CA-ON/monograph-doxycycline#dose-and-regimen"]  # another knowledge base's document
    for chunk_id in absent:
        assert chunk_id not in chunks and chunks.get(chunk_id) is None, chunk_id
        with pytest.raises(KeyError):
            chunks[chunk_id]


@pytest.mark.parametrize("scope", [LYME_ON, LYME_US, ("uti-cystitis", "CA-ON")])
def test_every_rule_has_its_passage_with_the_profiles_numbers(scope) -> None:
    spec = get_spec(scope[0])
    chunks = {c.id: c for c in all_chunks(scope)}
    for rule_id in spec.rules:
        chunk = chunks[spec.rule_chunk_id(rule_id, scope[1])]
        assert "{" not in chunk.text and rule_id in chunk.rules


def test_a_profile_passage_states_only_that_profiles_numbers() -> None:
    on = chunk_by_id()[get_spec("lyme-pep").rule_chunk_id("HR-ATTACHMENT-SHORT", "CA-ON")]
    us = chunk_by_id()[get_spec("lyme-pep").rule_chunk_id("HR-ATTACHMENT-SHORT", "US-IDSA")]
    assert "24 hours" in on.text and "36" not in on.text
    assert "36 hours" in us.text and "24 hours" not in us.text
    dose_on = chunk_by_id()["lyme-pep/CA-ON/monograph-doxycycline#dose-and-regimen"].text
    dose_us = chunk_by_id()["lyme-pep/US-IDSA/monograph-doxycycline#dose-and-regimen"].text
    assert "4 mg/kg" in dose_on and "4.4" not in dose_on
    assert "4.4 mg/kg" in dose_us


@pytest.mark.slow
def test_the_same_patient_cites_each_profiles_own_threshold_passage(kb_index) -> None:
    """Attached 20 hours: short of both minimums. Each report cites its own profile's rule passage,
    whose text carries that profile's number, and nothing from another knowledge base."""
    reports = {loc: assess(bite(loc), mode="full") for loc in ("CA-ON", "US")}
    for loc, minimum, other in (("CA-ON", "24", "36"), ("US", "36", "24")):
        a = reports[loc]
        profile = a.protocol.profile_id
        assert a.decision == "no_prophylaxis" and a.protocol.rule_ids == ["HR-ATTACHMENT-SHORT"]
        cited = {c.chunk_id for c in a.citations}
        rule_chunk = get_spec("lyme-pep").rule_chunk_id("HR-ATTACHMENT-SHORT", profile)
        assert rule_chunk in cited
        assert f"{minimum} hours" in chunk_by_id()[rule_chunk].text and f"{other} hours" not in chunk_by_id()[rule_chunk].text
        assert all(cid.startswith(f"lyme-pep/{profile}/") for cid in cited | set(a.evidence))
        assert f"attached less than {minimum} hours" in a.report_markdown
        # The audit names the knowledge base the assessment read, and its version is what that index serves.
        assert a.audit["kb_version"] == current_kb_version(("lyme-pep", profile))
        assert get_index(scope=("lyme-pep", profile)).collection.metadata["kb_version"] == a.audit["kb_version"]
    assert reports["CA-ON"].audit["kb_version"] != reports["US"].audit["kb_version"]


QUESTIONS = ["how long must the tick be attached?", "doxycycline dose for a child", "antacids and doxycycline",
             "is it safe while breastfeeding?", "what does the guideline say about prophylaxis?", "warfarin"]


@pytest.mark.slow
@pytest.mark.parametrize("scope", [LYME_ON, LYME_US])
def test_retrieval_stays_inside_the_knowledge_base(scope, kb_index) -> None:
    for q in QUESTIONS:
        hits = search_ids(q, 8, scope=scope)
        assert hits and all(cid.startswith(f"{scope[0]}/{scope[1]}/") for cid, _ in hits), q


@pytest.mark.slow
def test_a_profile_threshold_question_ranks_its_own_rule_passage(kb_index) -> None:
    for scope, number in ((LYME_ON, "24"), (LYME_US, "36")):
        top = [cid for cid, _ in search_ids("minimum hours the tick must be attached for prophylaxis", 5, scope=scope)]
        texts = " ".join(chunk_by_id()[cid].text for cid in top)
        assert re.search(rf"\b{number} hours\b", texts), (scope, top)


def test_registered_protocols_are_the_two_of_the_spec() -> None:
    assert set(registry()) == {"uti-cystitis", "lyme-pep"}
