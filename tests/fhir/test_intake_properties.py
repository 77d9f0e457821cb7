"""Safety invariants of the FHIR intake, over generated Bundles: another patient's data never changes
anything, and an interacting medication is excluded from consideration only when it is not active."""

from __future__ import annotations

import copy

from hypothesis import given, settings
from hypothesis import strategies as st

from clinreason.fhir.intake import intake_bundle
from clinreason.protocols.registry import resolve
from clinreason.samples import load_sample, sample_index
from fhir_bundles import PATIENT_REF, TODAY, bundle_of

STATUSES = ["active", "completed", "entered-in-error", "intended", "stopped", "on-hold", "unknown", "not-taken"]
INTERACTING = ["lisinopril", "methotrexate", "warfarin", "spironolactone"]


def _statement(i: int, text: str, status: str, ref: str = PATIENT_REF) -> dict:
    return {"resourceType": "MedicationStatement", "id": f"x{i}", "status": status, "medicationCodeableConcept": {"text": text},
            "subject": {"reference": ref}}


@settings(max_examples=60, deadline=None)
@given(name=st.sampled_from(sorted(sample_index())), extra=st.lists(st.tuples(st.sampled_from(INTERACTING), st.sampled_from(STATUSES)), max_size=4))
def test_another_patients_medications_change_nothing(name, extra):
    sample = load_sample(name)
    b = bundle_of(sample)
    b["entry"] += [{"resource": _statement(i, text, status, ref="Patient/someone-else")} for i, (text, status) in enumerate(extra)]
    intake = intake_bundle(b, today=TODAY)
    assert intake.validated.input_hash == resolve(sample).input_hash
    assert len([i for i in intake.ignored if i.reason.startswith("about another patient")]) == len(extra)


@settings(max_examples=60, deadline=None)
@given(text=st.sampled_from(INTERACTING), status=st.sampled_from(STATUSES))
def test_a_medication_is_listed_exactly_when_it_is_active(text, status):
    sample = load_sample("uncomplicated")
    b = bundle_of(sample)
    b["entry"].append({"resource": _statement(99, text, status)})
    intake = intake_bundle(b, today=TODAY)
    meds = intake.request["history"]["meds"]
    assert (text in meds) == (status == "active")
    # Listed, it acts as the same typed entry would: the same exclusions.
    typed = copy.deepcopy(sample)
    if status == "active":
        typed["history"]["meds"] = [*typed["history"].get("meds", []), text]
    excluded = {o.option for o in intake.validated.evaluate().options if o.exclusions}
    assert excluded == {o.option for o in resolve(typed).evaluate().options if o.exclusions}
