"""FHIR R4 Bundle -> patient JSON: HL7's own examples, mapped, with every field's source, and the
same decision as the equivalent JSON."""

from __future__ import annotations

import json

import pytest

from clinreason.errors import InvalidPatient
from clinreason.fhir.intake import intake_bundle
from clinreason.protocols.registry import resolve
from clinreason.samples import load_sample, sample_index, sample_protocol
from fhir_bundles import PATIENT_REF, TODAY, about, bundle, bundle_of, patient, questionnaire_response

UTI_ANSWERS = {"renal_function_summary": "normal", "locale_code": "CA-ON",
               **{f"symptoms.{k}": v for k, v in dict(dysuria=True, urgency=True, frequency=False, suprapubic_pain=False, hematuria=False).items()},
               **{f"red_flags.{k}": False for k in ("fever", "rigors", "flank_pain", "nausea_vomiting", "systemic")},
               **{f"history.{k}": False for k in ("antibiotics_last_90d", "catheter", "stones", "immunocompromised")},
               **{f"recurrence.{k}": False for k in ("relapse_within_4w", "recurrent_6m", "recurrent_12m")}}
IPS_PATIENT = "urn:uuid:2b90dd2b-2dab-4c75-9bb9-a355e07401e8"


def _errors(exc: pytest.ExceptionInfo[InvalidPatient]) -> dict[str, str]:
    return {e.field: e.message for e in exc.value.errors}


@pytest.fixture
def ips_bundle(hl7_resource):
    """HL7 IPS 2.0.0's example document Bundle-01 (a woman born 1972-05-01 on anastrozole and black cohosh,
    allergic to penicillins), plus the answers clinreason's questionnaire asks."""
    b = hl7_resource("ips", "Bundle-IPS-examples-Bundle-01.json")
    qr = questionnaire_response("uti-cystitis", {"pregnancy_status": "not_pregnant", **UTI_ANSWERS}, ref=IPS_PATIENT)
    b["entry"].append({"fullUrl": "urn:uuid:qr-1", "resource": qr})
    return b


def test_ips_document_bundle_maps_with_sources(ips_bundle):
    intake = intake_bundle(ips_bundle, today=TODAY)
    h = intake.request["history"]
    assert intake.request["age"] == 54 and intake.request["sex"] == "female"
    # SNOMED fully specified names are read as the names inside them; the herbal product is passed on as written.
    assert h["meds"] == ["anastrozole", "Black Cohosh Extract herbal supplement"]
    assert h["allergies"] == ["penicillin"]
    where = {s.field: s.describe() for s in intake.sources}
    assert where["age"] == "Patient/2b90dd2b-2dab-4c75-9bb9-a355e07401e8.birthDate (1972-05-01, age on 2026-12-01)"
    assert "administrative gender" in where["sex"]
    assert where["history.meds[0]"].startswith("MedicationStatement/c220e36c-eb67-4fc4-9ba1-2fabc52acec6.medicationReference(")
    assert where["history.allergies[0]"] == "AllergyIntolerance/72884cad-ebe6-4f43-a51a-2f978275f132.code"
    ignored = {i.resource: i.reason for i in intake.ignored}
    assert "nothing to add" in ignored["AllergyIntolerance/c7781f44-6df8-4a8b-9e06-0b34263a47c5"]  # "No known food allergy"
    assert "Malignant tumor of breast" in ignored["Condition/c4597aa2-688a-401b-a658-70acc6de28c6"]


def test_ips_bundle_decides_like_the_equivalent_json(ips_bundle):
    intake = intake_bundle(ips_bundle, today=TODAY)
    equivalent = {"protocol": "uti-cystitis", "age": 54, "sex": "female", "pregnancy_status": "not_pregnant",
                  "renal_function_summary": "normal", "locale_code": "CA-ON",
                  "symptoms": {"dysuria": True, "urgency": True, "frequency": False, "suprapubic_pain": False, "hematuria": False},
                  "red_flags": {k: False for k in ("fever", "rigors", "flank_pain", "nausea_vomiting", "systemic")},
                  "history": {"antibiotics_last_90d": False, "catheter": False, "stones": False, "immunocompromised": False,
                              "meds": ["anastrozole", "Black Cohosh Extract herbal supplement"], "allergies": ["penicillin"]},
                  "recurrence": {"relapse_within_4w": False, "recurrent_6m": False, "recurrent_12m": False}}
    via_fhir, via_json = intake.validated, resolve(equivalent)
    assert via_fhir.input_hash == via_json.input_hash
    a, b = via_fhir.evaluate(), via_json.evaluate()
    assert a.decision == b.decision == "recommend_treatment"
    # The unrecognised herbal product is not trusted: it is a blocking check, as typed text would be.
    assert [u.entry for u in a.unverified_entries] == ["Black Cohosh Extract herbal supplement"]


def test_r4_medication_examples(hl7_resource):
    """MedicationStatement examples of FHIR R4: a contained two-ingredient product gives both ingredients,
    entered-in-error is left out and listed, an unnamed pill is passed on and stays unverified."""
    statements = [about(hl7_resource("r4_examples", f"MedicationStatement-example00{n}.json")) for n in (1, 3, 5)]
    b = bundle(patient(40, "female"), *statements,
               questionnaire_response("uti-cystitis", {"pregnancy_status": "not_pregnant", **UTI_ANSWERS}))
    intake = intake_bundle(b, today=TODAY)
    assert intake.request["history"]["meds"] == ["Acetaminophen 500 MG", "Diphenhydramine Hydrochloride 25 mg",
                                                 "Little Pink Pill for water retention"]
    ignored = {i.resource: i.reason for i in intake.ignored}
    assert ignored["MedicationStatement/example005"] == "status 'entered-in-error': only active medications are listed"
    result = intake.validated.evaluate()
    assert [u.entry for u in result.unverified_entries] == ["Little Pink Pill for water retention"]
    assert result.decision == "recommend_treatment" and result.unverified_entries[0].options  # options it leaves unverified


def test_r4_allergy_examples(hl7_resource):
    """Penicillin G (RxNorm, unconfirmed) is kept, marked unconfirmed; food allergies and NKDA add nothing."""
    allergies = [about(hl7_resource("r4_examples", f"AllergyIntolerance-{n}.json")) for n in ("medication", "fishallergy", "nkda")]
    b = bundle(patient(40, "female"), *allergies, questionnaire_response("uti-cystitis", {"pregnancy_status": "not_pregnant", **UTI_ANSWERS}))
    intake = intake_bundle(b, today=TODAY)
    assert intake.request["history"]["allergies"] == ["Penicillin G"]
    src = next(s for s in intake.sources if s.field == "history.allergies[0]")
    assert (src.resource, src.note) == ("AllergyIntolerance/medication", "unconfirmed")
    ignored = {i.resource: i.reason for i in intake.ignored}
    assert ignored["AllergyIntolerance/fishallergy"] == "category food: not a medication allergy"
    assert ignored["AllergyIntolerance/nkda"] == "records 'NKDA': nothing to add"


def test_ips_pregnancy_status_refers(hl7_resource):
    """HL7 IPS's pregnancy-status observation (LOINC 82810-3 = LA15173-0 Pregnant) settles the field: pregnant -> refer."""
    obs = about(hl7_resource("ips", "Observation-pregnancy-status-example.json"))
    obs.pop("hasMember")
    obs.pop("performer")
    b = bundle(patient(30, "female"), obs, questionnaire_response("uti-cystitis", UTI_ANSWERS))
    intake = intake_bundle(b, today=TODAY)
    assert intake.request["pregnancy_status"] == "pregnant"
    assert next(s for s in intake.sources if s.field == "pregnancy_status").describe() == \
        "Observation/pregnancy-status-example.valueCodeableConcept (LA15173-0, 2020-01-10)"
    assert intake.validated.evaluate().decision == "refer_complicated"


def test_observation_and_answer_that_disagree_are_a_field_error(hl7_resource):
    obs = about(hl7_resource("ips", "Observation-pregnancy-status-example.json"))
    obs.pop("hasMember")
    obs.pop("performer")
    b = bundle(patient(30, "female"), obs, questionnaire_response("uti-cystitis", {"pregnancy_status": "not_pregnant", **UTI_ANSWERS}))
    with pytest.raises(InvalidPatient) as exc:
        intake_bundle(b, today=TODAY)
    (field, message), = _errors(exc).items()
    assert field == "Observation/pregnancy-status-example.valueCodeableConcept"
    assert "'pregnant'" in message and "'not_pregnant'" in message and "QuestionnaireResponse/qr1" in message


def test_r4_egfr_example_without_a_value_is_not_used(hl7_resource):
    """R4's eGFR example (33914-3) carries its values only as race-specific components: not read, listed,
    and renal function must then come from the questionnaire."""
    egfr = about(hl7_resource("r4_examples", "Observation-f205.json"))
    answers = {k: v for k, v in UTI_ANSWERS.items() if k != "renal_function_summary"}
    b = bundle(patient(40, "female"), egfr, questionnaire_response("uti-cystitis", {"pregnancy_status": "not_pregnant", **answers}))
    intake = intake_bundle(b, today=TODAY)
    assert "race-specific" in {i.resource: i.reason for i in intake.ignored}["Observation/f205"]
    with pytest.raises(InvalidPatient) as exc:
        intake.validated
    assert _errors(exc) == {"QuestionnaireResponse.item[renal_function_summary]": "renal_function_summary: required field is missing"}


@pytest.mark.parametrize(("value", "decision"), [(25.0, "refer_complicated"), (75.0, "recommend_treatment")])
def test_measured_egfr_decides_renal_function(hl7_resource, value, decision):
    """The eGFR example with a measured value (HL7's resource, its components replaced by a top-level value):
    the protocol's rule reads the number (below 30 refers); the unrecorded summary is 'unknown', not a guess."""
    egfr = about(hl7_resource("r4_examples", "Observation-f205.json"))
    egfr.pop("component")
    egfr["valueQuantity"] = {"value": value, "unit": "mL/min/1.73m2", "system": "http://unitsofmeasure.org", "code": "mL/min/{1.73_m2}"}
    answers = {k: v for k, v in UTI_ANSWERS.items() if k != "renal_function_summary"}
    b = bundle(patient(40, "female"), egfr, questionnaire_response("uti-cystitis", {"pregnancy_status": "not_pregnant", **answers}))
    intake = intake_bundle(b, today=TODAY)
    assert intake.request["egfr_ml_min"] == value and intake.request["renal_function_summary"] == "unknown"
    assert intake.validated.evaluate().decision == decision


@pytest.mark.parametrize(("quantity", "message"), [
    ({"value": 0.9, "unit": "mg/dL", "system": "http://unitsofmeasure.org", "code": "mg/dL"}, "unit 'mg/dL' cannot be read as mL/min"),
    ({"value": 60, "comparator": ">", "system": "http://unitsofmeasure.org", "code": "mL/min/{1.73_m2}"}, "a bound (>60)"),
])
def test_unreadable_egfr_is_a_field_error(hl7_resource, quantity, message):
    egfr = about(hl7_resource("r4_examples", "Observation-f205.json"))
    egfr.pop("component")
    egfr["valueQuantity"] = quantity
    b = bundle(patient(40, "female"), egfr, questionnaire_response("uti-cystitis", {"pregnancy_status": "not_pregnant", **UTI_ANSWERS}))
    with pytest.raises(InvalidPatient) as exc:
        intake_bundle(b, today=TODAY)
    assert message in _errors(exc)["Observation/f205.valueQuantity"]


def test_r4_body_weight_in_pounds_for_lyme(hl7_resource):
    """R4's body-weight example: 185 [lb_av] -> 83.91 kg."""
    weight = about(hl7_resource("r4_examples", "Observation-example.json"))
    weight.pop("encounter")
    sample = load_sample(next(n for n in sample_index() if sample_protocol(n) == "lyme-pep"))
    b = bundle_of(sample)
    b["entry"].append({"resource": weight})
    answers = b["entry"][-2]["resource"]["item"]
    b["entry"][-2]["resource"]["item"] = [i for i in answers if i["linkId"] != "weight_kg"]
    intake = intake_bundle(b, today=TODAY)
    assert intake.request["weight_kg"] == 83.91
    assert next(s for s in intake.sources if s.field == "weight_kg").describe() == "Observation/example.valueQuantity (185 [lb_av], 2016-03-28)"


def test_another_patients_resources_are_not_used(hl7_resource):
    """HL7's examples name their own patients: left as published, they are not this patient's data."""
    b = bundle(patient(40, "female"), hl7_resource("r4_examples", "MedicationStatement-example003.json"),
               questionnaire_response("uti-cystitis", {"pregnancy_status": "not_pregnant", **UTI_ANSWERS}))
    intake = intake_bundle(b, today=TODAY)
    assert intake.request["history"]["meds"] == []
    assert {i.resource: i.reason for i in intake.ignored}["MedicationStatement/example003"] == "about another patient (Patient/pat1)"


def test_male_pregnancy_not_applicable_and_missing_answers_name_the_item():
    b = bundle(patient(40, "male"), questionnaire_response("uti-cystitis", {"locale_code": "CA-ON", "renal_function_summary": "normal"}))
    intake = intake_bundle(b, today=TODAY)
    assert intake.request["pregnancy_status"] == "not_applicable"
    with pytest.raises(InvalidPatient) as exc:
        intake.validated
    errors = _errors(exc)
    assert errors["QuestionnaireResponse.item[symptoms.dysuria]"] == "symptoms.dysuria: required field is missing"
    assert "QuestionnaireResponse.item[history.catheter]" in errors


def test_partial_birth_date_only_when_the_age_is_certain():
    answers = questionnaire_response("uti-cystitis", {"pregnancy_status": "not_pregnant", **UTI_ANSWERS})
    ambiguous = bundle({"resourceType": "Patient", "id": "p1", "gender": "female", "birthDate": "1980"}, answers)
    with pytest.raises(InvalidPatient) as exc:
        intake_bundle(ambiguous, today=TODAY)
    assert "gives age 45 or 46" in _errors(exc)["Patient/p1.birthDate"]
    certain = bundle({"resourceType": "Patient", "id": "p1", "gender": "female", "birthDate": "1980-01"}, answers)
    assert intake_bundle(certain, today=TODAY).request["age"] == 46


def test_invalid_fhir_names_the_element():
    b = bundle(patient(40, "female"))
    b["entry"][0]["resource"]["birthDate"] = 1980
    with pytest.raises(InvalidPatient) as exc:
        intake_bundle(b, today=TODAY)
    assert list(_errors(exc)) == ["Bundle.entry[0].resource.birthDate"]


def test_not_a_bundle():
    with pytest.raises(InvalidPatient) as exc:
        intake_bundle({"resourceType": "Patient"})
    assert _errors(exc) == {"resourceType": "expected a FHIR Bundle, got 'Patient'"}


@pytest.mark.parametrize("name", sample_index())
def test_every_sample_as_a_bundle_decides_the_same(name):
    """Each bundled sample, sent as the Bundle a record system would hold, validates to the same
    patient (same input hash) and the same decision and allowed options."""
    sample = load_sample(name)
    intake = intake_bundle(bundle_of(sample), today=TODAY)
    assert intake.validated.input_hash == resolve(sample).input_hash
    a, b = intake.validated.evaluate(), resolve(sample).evaluate()
    assert (a.decision, a.allowed_options) == (b.decision, b.allowed_options)
    assert all(s.resource != "request" for s in intake.sources)
    assert json.loads(json.dumps(intake.provenance()))["format"] == "FHIR R4 Bundle"  # kept beside the assessment as JSON


def _med(code: str | None, display: str | None = None, text: str | None = None, mid: str = "m1") -> dict:
    concept: dict = {}
    if code:
        concept["coding"] = [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": code, **({"display": display} if display else {})}]
    if text:
        concept["text"] = text
    return {"resourceType": "MedicationStatement", "id": mid, "status": "active", "medicationCodeableConcept": concept,
            "subject": {"reference": PATIENT_REF}}


def test_an_rxnorm_code_alone_is_read_as_its_ingredient():
    """RxNorm 29046 (lisinopril) with no text: the trimethoprim-containing options are excluded, as for typed "lisinopril"."""
    answers = questionnaire_response("uti-cystitis", {"pregnancy_status": "not_pregnant", **UTI_ANSWERS})
    intake = intake_bundle(bundle(patient(40, "female"), _med("29046"), answers), today=TODAY)
    assert intake.request["history"]["meds"] == ["lisinopril"]
    typed = resolve({**intake.request, "history": {**intake.request["history"], "meds": ["lisinopril"]}}).evaluate()
    result = intake.validated.evaluate()
    excluded = {o.option for o in result.options if o.exclusions}
    assert excluded == {o.option for o in typed.options if o.exclusions} and {"trimethoprim", "tmp_smx"} <= excluded


def test_a_code_and_a_text_that_disagree_are_both_checked():
    """Text says one drug, the RxNorm code (6851, methotrexate) another: neither is trusted alone, both are listed."""
    answers = questionnaire_response("uti-cystitis", {"pregnancy_status": "not_pregnant", **UTI_ANSWERS})
    intake = intake_bundle(bundle(patient(40, "female"), _med("6851", text="folic acid 1 mg"), answers), today=TODAY)
    assert intake.request["history"]["meds"] == ["folic acid 1 mg", "methotrexate"]
    assert {o.option for o in intake.validated.evaluate().options if o.exclusions} >= {"tmp_smx", "trimethoprim"}


def test_a_statement_and_a_request_of_one_drug_are_one_medication():
    answers = questionnaire_response("uti-cystitis", {"pregnancy_status": "not_pregnant", **UTI_ANSWERS})
    request = {**_med("29046", "lisinopril 10 MG Oral Tablet", mid="r1"), "resourceType": "MedicationRequest", "intent": "order"}
    intake = intake_bundle(bundle(patient(40, "female"), _med(None, text="Lisinopril 10 mg"), request, answers), today=TODAY)
    assert intake.request["history"]["meds"] == ["Lisinopril 10 mg"]
    assert "already listed" in {i.resource: i.reason for i in intake.ignored}["MedicationRequest/r1"]


@pytest.mark.parametrize(("code", "field"), [({"system": "http://snomed.info/sct", "code": "95570007"}, "history.stones"),
                                             ({"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "N31.9"}, "history.neurogenic_bladder")])
def test_an_active_condition_settles_its_field_and_refers(code, field):
    cond = {"resourceType": "Condition", "id": "c1", "subject": {"reference": PATIENT_REF}, "code": {"coding": [code]},
            "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]}}
    answers = {k: v for k, v in UTI_ANSWERS.items() if k != field}
    intake = intake_bundle(bundle(patient(40, "female"), cond, questionnaire_response("uti-cystitis", {"pregnancy_status": "not_pregnant", **answers})),
                           today=TODAY)
    leaf = field.split(".")[1]
    assert intake.request["history"][leaf] is True
    assert intake.validated.evaluate().decision == "refer_complicated"
    resolved = {**cond, "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "resolved"}]}}
    later = intake_bundle(bundle(patient(40, "female"), resolved, questionnaire_response("uti-cystitis", {"pregnancy_status": "not_pregnant", **UTI_ANSWERS})),
                          today=TODAY)
    assert later.request["history"].get(leaf, False) is False  # a resolved condition settles nothing


def test_an_impossible_mapped_value_names_its_resource(hl7_resource):
    """R4's weight example set to 400 kg: the input model's range check, reported at the Observation."""
    weight = about(hl7_resource("r4_examples", "Observation-example.json"))
    weight.pop("encounter")
    weight["valueQuantity"] = {"value": 400, "unit": "kg", "system": "http://unitsofmeasure.org", "code": "kg"}
    sample = load_sample("lyme-adult-prophylaxis")
    b = bundle_of(sample)
    qr = b["entry"][-1]["resource"]
    qr["item"] = [i for i in qr["item"] if i["linkId"] != "weight_kg"]
    b["entry"].append({"resource": weight})
    with pytest.raises(InvalidPatient) as exc:
        intake_bundle(b, today=TODAY).validated
    (field, message), = _errors(exc).items()
    assert field == "Observation/example.valueQuantity"
    assert message.startswith("weight_kg: Input should be less than or equal to 300")


@pytest.mark.parametrize(("change", "field", "message"), [
    (lambda qr: qr.update(status="in-progress"), "QuestionnaireResponse/qr1.status", "send a completed (or amended) response"),
    (lambda qr: qr["item"].append({"linkId": "history.favourite_colour", "answer": [{"valueString": "blue"}]}),
     "QuestionnaireResponse/qr1.item[", "is not an item of the uti-cystitis questionnaire"),
    (lambda qr: qr["item"].append({"linkId": "age", "answer": [{"valueString": "forty"}]}), "QuestionnaireResponse/qr1.item[", "expected valueInteger"),
    (lambda qr: qr["item"].append({"linkId": "renal_function_summary", "answer": [{"valueCoding": {"code": "fine"}}]}),
     "QuestionnaireResponse/qr1.item[", "'fine' is not one of"),
    (lambda qr: qr.update(questionnaire="https://clinreason.org/fhir/Questionnaire/lyme-pep"), "QuestionnaireResponse.questionnaire", "not 'uti-cystitis'"),
])
def test_bad_answers_are_field_errors(change, field, message):
    qr = questionnaire_response("uti-cystitis", {"pregnancy_status": "not_pregnant", **{k: v for k, v in UTI_ANSWERS.items() if k != "renal_function_summary"}})
    change(qr)
    with pytest.raises(InvalidPatient) as exc:
        intake_bundle(bundle(patient(40, "female"), qr), protocol_id="uti-cystitis", today=TODAY).validated
    assert any(f.startswith(field) and message in m for f, m in _errors(exc).items()), _errors(exc)


def test_two_patients_are_refused():
    with pytest.raises(InvalidPatient) as exc:
        intake_bundle(bundle(patient(40, "female"), patient(50, "male", pid="p2")), today=TODAY)
    assert "send one patient's record" in _errors(exc)["Patient"]


def test_a_lab_history_takes_the_latest_result(hl7_resource):
    """Three eGFRs (HL7's example, re-dated): the latest decides; the earlier ones are listed as superseded."""
    answers = {k: v for k, v in UTI_ANSWERS.items() if k != "renal_function_summary"}
    results = []
    for i, (when, value) in enumerate((("2026-01-10", 80.0), ("2026-11-20", 25.0), ("2026-06-01", 70.0))):
        egfr = about(hl7_resource("r4_examples", "Observation-f205.json"))
        egfr.pop("component")
        egfr.pop("issued")
        egfr |= {"id": f"egfr{i}", "effectiveDateTime": when,
                 "valueQuantity": {"value": value, "system": "http://unitsofmeasure.org", "code": "mL/min/{1.73_m2}"}}
        results.append(egfr)
    b = bundle(patient(40, "female"), *results, questionnaire_response("uti-cystitis", {"pregnancy_status": "not_pregnant", **answers}))
    intake = intake_bundle(b, today=TODAY)
    assert intake.request["egfr_ml_min"] == 25.0
    ignored = {i.resource: i.reason for i in intake.ignored}
    assert ignored["Observation/egfr0"] == ignored["Observation/egfr2"] == "egfr_ml_min: superseded by a later result (2026-11-20)"
    assert intake.validated.evaluate().decision == "refer_complicated"


def test_without_the_fhir_models_a_bundle_is_a_clear_problem(monkeypatch):
    """No `fhir` extra: FhirUnavailable (503 over the API), never an ImportError (a 500)."""
    from clinreason.fhir import models

    def missing(name: str):
        raise ImportError(f"No module named {name!r}")
    monkeypatch.setattr(models.importlib, "import_module", missing)
    with pytest.raises(models.FhirUnavailable) as exc:
        intake_bundle(bundle(patient(40, "female")), today=TODAY)
    assert exc.value.status == 503 and "pip install 'clinreason[fhir]'" in str(exc.value)
