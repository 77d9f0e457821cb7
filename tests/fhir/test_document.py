"""The FHIR document Bundle of a stored assessment: the report as a Composition, the plan as a draft
MedicationRequest or a ServiceRequest, exclusions and cautions as DetectedIssues, the sign-off as a
Provenance; checked for the clinical facts they carry, against fhirclient's R4 models, and against
the shape of HL7's own published examples."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import Any

import pytest
from fhirclient.models.bundle import Bundle
from fhirclient.models.fhirabstractbase import FHIRValidationError
from fhirclient.models.fhirelementfactory import FHIRElementFactory

from clinreason.assessment import assess
from clinreason.fhir import narrative
from clinreason.fhir.document import NotADocument, fhir_document
from clinreason.rendering import patient_from_checkpoint
from clinreason.samples import load_sample, sample_index, sample_protocol

URN = re.compile(r"^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
XHTML_DIV = '<div xmlns="http://www.w3.org/1999/xhtml">'


def document(pipeline, a) -> dict[str, Any]:
    return fhir_document(a, patient_from_checkpoint(pipeline.graph.checkpointer, a.id))


def of_type(doc: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [e["resource"] for e in doc["entry"] if e["resource"]["resourceType"] == kind]


def url_of(doc: dict[str, Any], resource: dict[str, Any]) -> str:
    return next(e["fullUrl"] for e in doc["entry"] if e["resource"] is resource)


def issues_for(doc: dict[str, Any], rule_id: str) -> list[dict[str, Any]]:
    return [r for r in of_type(doc, "DetectedIssue") if r["code"]["coding"][0]["code"] == rule_id]


@pytest.fixture(scope="module")
def run(offline_pipeline):
    """run(sample) -> (assessment, its document); each sample assessed once per module."""
    done: dict[str, Any] = {}

    def go(name: str):
        if name not in done:
            a = offline_pipeline.run(load_sample(name))
            done[name] = (a, document(offline_pipeline, a))
        return done[name]
    return go


# --- clinical facts -------------------------------------------------------------------------------

def test_an_ace_inhibitor_excludes_the_trimethoprim_options_and_the_request_is_the_chosen_option(run):
    a, doc = run("raas-nitrofurantoin-allergy")  # lisinopril + spironolactone, allergic to nitrofurantoin
    hyperkalemia = issues_for(doc, "EX-HYPERKALEMIA")
    assert sorted(i["implicated"][0]["display"] for i in hyperkalemia) == ["Trimethoprim", "Trimethoprim-sulfamethoxazole (TMP-SMX)"]
    for issue in hyperkalemia:
        assert issue["severity"] == "high" and issue["status"] == "final"
        assert issue["detail"].startswith("Hyperkalemia with renin-angiotensin")
        assert "lisinopril" in issue["evidence"][0]["code"][0]["text"]
        assert issue["code"]["text"] == "Exclusion: hyperkalemia risk"
    [allergy] = issues_for(doc, "EX-ALLERGY")
    assert allergy["implicated"] == [{"display": "Nitrofurantoin"}] and "nitrofurantoin" in allergy["evidence"][0]["code"][0]["text"]

    [request] = of_type(doc, "MedicationRequest")
    assert a.plan.option == "fosfomycin"
    assert (request["status"], request["intent"]) == ("draft", "proposal")
    assert request["medicationCodeableConcept"] == {"text": a.plan.regimen.drug} == {"text": "fosfomycin trometamol"}
    assert request["reasonCode"] == [{"text": "Acute uncomplicated cystitis"}]  # the protocol's title
    [dosage] = request["dosageInstruction"]
    assert dosage["text"] == "fosfomycin trometamol 3 g by mouth as a single dose"
    assert dosage["timing"] == {"repeat": {"count": 1}}
    assert dosage["doseAndRate"] == [{"doseQuantity": {"value": 3, "unit": "g", "system": "http://unitsofmeasure.org", "code": "g"}}]
    assert dosage["route"]["coding"][0]["code"] == "26643006"
    assert of_type(doc, "ServiceRequest") == [] and of_type(doc, "Provenance") == []

    # The NSAID caution is about the patient's own medicines, not the proposal: nothing implicated, its action the mitigation.
    [nsaid] = issues_for(doc, "CA-NSAID-RAAS-DIURETIC")
    caution = next(c for c in a.protocol.cautions if c.rule_id == "CA-NSAID-RAAS-DIURETIC")
    assert nsaid["severity"] == "high"  # a major caution
    assert nsaid["detail"] == caution.message and nsaid["mitigation"] == [{"action": {"text": caution.action}}]
    assert "implicated" not in nsaid and "ibuprofen" in nsaid["evidence"][0]["code"][0]["text"]
    assert len(of_type(doc, "DetectedIssue")) == sum(len(o.exclusions) for o in a.protocol.options) + len(a.protocol.cautions)


def test_a_twice_daily_course_has_structured_timing_and_a_combination_dose_stays_text(run):
    _, doc = run("uncomplicated")
    [dosage] = of_type(doc, "MedicationRequest")[0]["dosageInstruction"]
    assert dosage["text"] == "nitrofurantoin monohydrate/macrocrystals 100 mg by mouth twice daily for 5 days"
    assert dosage["timing"]["repeat"] == {"boundsDuration": {"value": 5, "unit": "days", "system": "http://unitsofmeasure.org", "code": "d"},
                                          "frequency": 2, "period": 1, "periodUnit": "d"}
    assert dosage["timing"]["code"]["coding"][0]["code"] == "BID"
    assert dosage["doseAndRate"][0]["doseQuantity"]["value"] == 100

    a, doc = run("unrecognised-medication")  # allergic to the other two: the two-ingredient tablet is proposed
    [dosage] = of_type(doc, "MedicationRequest")[0]["dosageInstruction"]
    assert a.plan.regimen.dose == "160/800 mg" and "160/800 mg" in dosage["text"]
    assert "doseAndRate" not in dosage  # no single quantity says 160/800 mg honestly
    assert dosage["timing"]["repeat"]["boundsDuration"]["value"] == 3


@pytest.mark.parametrize(("sample", "priority", "meaning"), [
    ("red-flags-older-adult", "asap", "signs of upper-tract or systemic infection: same-day medical assessment"),
    ("lyme-doxycycline-allergy", "urgent", "criteria met, but doxycycline cannot be given for this patient: refer"),
])
def test_a_referral_is_a_service_request_with_the_urgency_as_priority_and_no_medication(run, sample, priority, meaning):
    a, doc = run(sample)
    [referral] = of_type(doc, "ServiceRequest")
    assert referral["priority"] == priority and referral["intent"] == "proposal" and referral["status"] == "active"
    assert referral["reasonCode"][0] == {"text": meaning}
    assert referral["code"]["coding"][0] == {"system": "http://snomed.info/sct", "code": "3457005", "display": "Patient referral"}
    assert referral["patientInstruction"] == " ".join(c.text for c in a.referral.patient_advice)
    assert of_type(doc, "MedicationRequest") == [] and of_type(doc, "Provenance") == []
    composition = doc["entry"][0]["resource"]
    assert composition["status"] == "final"  # a referral needs no sign-off
    referral_section = next(s for s in composition["section"] if s["title"] == "Referral")
    assert referral_section["entry"] == [{"reference": url_of(doc, referral)}]


def test_a_reported_allergy_to_the_only_option_is_a_detected_issue_naming_it(run):
    _, doc = run("lyme-doxycycline-allergy")
    [issue] = issues_for(doc, "CI-TETRACYCLINE-ALLERGY")
    assert issue["implicated"] == [{"display": "Doxycycline"}] and issue["detail"] == "Reported allergy to Doxycycline."
    assert "Vibramycin" in issue["evidence"][0]["code"][0]["text"]


def test_a_caution_about_the_proposed_option_implicates_the_medication_request(run):
    _, doc = run("lyme-warfarin-caution")
    [request] = of_type(doc, "MedicationRequest")
    assert request["medicationCodeableConcept"]["text"] == "doxycycline"
    assert request["reasonCode"] == [{"text": "Lyme disease prophylaxis after a tick bite"}]
    assert request["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"]["value"] == 200
    [inr] = issues_for(doc, "CA-WARFARIN")
    assert inr["severity"] == "moderate" and inr["implicated"] == [{"reference": url_of(doc, request), "display": "Doxycycline"}]
    assert "INR" in inr["mitigation"][0]["action"]["text"] and "Coumadin" in inr["evidence"][0]["code"][0]["text"]
    [counsel] = issues_for(doc, "CA-COUNSEL")
    assert counsel["severity"] == "low"


# --- sign-off --------------------------------------------------------------------------------------

@pytest.mark.parametrize(("action", "agent", "drug"), [("approve", None, "nitrofurantoin monohydrate/macrocrystals"), ("amend", "fosfomycin", "fosfomycin trometamol"),
                                                       ("reject", None, None)])
def test_a_provenance_appears_with_the_sign_off_naming_the_prescriber(offline_pipeline, action, agent, drug):
    a = offline_pipeline.run(load_sample("uncomplicated"))
    before = document(offline_pipeline, a)
    assert of_type(before, "Provenance") == []
    assert before["entry"][0]["resource"]["status"] == "preliminary" and "attester" not in before["entry"][0]["resource"]

    signed = offline_pipeline.signoff(a.id, action, "RPh-4521", "checked", agent)
    after = document(offline_pipeline, signed)
    [prov] = of_type(after, "Provenance")
    composition = after["entry"][0]["resource"]
    assert prov["activity"] == {"text": action}
    assert prov["recorded"] == signed.signoff.signed_at == composition["date"] == after["timestamp"]
    assert prov["agent"][0]["who"]["identifier"]["value"] == "RPh-4521" and prov["agent"][0]["type"]["coding"][0]["code"] == "verifier"
    assert composition["status"] == "final" and composition["attester"][0]["party"]["display"] == "RPh-4521"
    requests = of_type(after, "MedicationRequest")
    assert [r["medicationCodeableConcept"]["text"] for r in requests] == ([drug] if drug else [])
    assert [t["reference"] for t in prov["target"]] == [after["entry"][0]["fullUrl"], *(url_of(after, r) for r in requests)]
    assert after["identifier"] != before["identifier"]  # a new document
    assert after["entry"][0]["fullUrl"] == before["entry"][0]["fullUrl"]  # of the same Composition


# --- the document: sections, references, narrative ---------------------------------------------------

@pytest.mark.parametrize("sample", ["raas-nitrofurantoin-allergy", "red-flags-older-adult", "lyme-warfarin-caution", "lyme-stiff-neck"])
def test_sections_mirror_the_report_and_every_reference_resolves(run, sample):
    a, doc = run(sample)
    assert doc["type"] == "document" and URN.match(doc["identifier"]["value"]) and doc["timestamp"] == a.audit["created_at"]
    composition = doc["entry"][0]["resource"]
    assert composition["resourceType"] == "Composition"
    assert composition["title"] == a.report_markdown.splitlines()[0].removeprefix("# ")
    assert [s["title"] for s in composition["section"]] == re.findall(r"^## (.+)$", a.report_markdown, re.MULTILINE)
    urls = [e["fullUrl"] for e in doc["entry"]]
    assert all(URN.match(u) for u in urls) and len(set(urls)) == len(urls)
    assert all(e["resource"]["id"] == e["fullUrl"].removeprefix("urn:uuid:") for e in doc["entry"])

    def references(node: Any) -> list[str]:
        if isinstance(node, dict):
            return ([node["reference"]] if isinstance(node.get("reference"), str) else []) + [r for v in node.values() for r in references(v)]
        return [r for v in node for r in references(v)] if isinstance(node, list) else []
    assert set(references(doc["entry"])) <= set(urls)  # a document resolves every reference inside itself
    listed = {e["reference"] for s in composition["section"] for e in s.get("entry", [])}
    entries = {url_of(doc, r) for kind in ("MedicationRequest", "ServiceRequest", "DetectedIssue") for r in of_type(doc, kind)}
    assert listed == entries  # every clinical entry is stated by a section, and nothing else is
    patient = of_type(doc, "Patient")[0]
    assert composition["subject"]["reference"] == url_of(doc, patient)
    assert composition["author"][0]["reference"] == url_of(doc, of_type(doc, "Device")[0])


def test_section_narratives_are_the_report_as_valid_xhtml(run):
    _, doc = run("raas-nitrofurantoin-allergy")
    composition = doc["entry"][0]["resource"]
    divs = [composition["text"]["div"], *(s["text"]["div"] for s in composition["section"])]
    divs += [e["resource"]["text"]["div"] for e in doc["entry"][1:]]
    for div in divs:
        assert div.startswith(XHTML_DIV) and narrative.problems(div) == []
        assert not re.search(r"<(script|style|form|input|iframe|object|link|head|body)\b", div)
    review = next(s for s in composition["section"] if s["title"] == "Medication review")
    text = "".join(ET.fromstring(review["text"]["div"]).itertext())
    assert "NSAID with an ACE inhibitor, ARB or ARNI and a diuretic (major)" in text
    summary = ET.fromstring(composition["section"][0]["text"]["div"])
    assert summary.find(".//{http://www.w3.org/1999/xhtml}strong").text == "Decision:"


def test_hostile_markdown_becomes_safe_narrative():
    div = narrative.from_markdown("~~struck~~ <script>alert(1)</script> [x](javascript:alert(1)) <b onclick=x>b</b>\n\n| a |\n|---|\n| 1 |")
    assert narrative.problems(div) == []
    assert "<script" not in div and "<b " not in div and 'href="javascript' not in div
    assert '<span style="text-decoration: line-through">struck</span>' in div and "&lt;script&gt;" in div and "<table>" in div
    assert narrative.problems('<div xmlns="http://www.w3.org/1999/xhtml"><script>x</script></div>') == [
        "element {http://www.w3.org/1999/xhtml}script not allowed"]
    assert narrative.problems('<div xmlns="http://www.w3.org/1999/xhtml"><p onclick="x">y</p></div>') == ["attribute onclick on p not allowed"]
    preamble, sections = narrative.split("# T\n\nintro\n\n## One\ntext\n\n```\n## not a heading\n```\n> ## quoted\n\n## Two\n")
    assert "intro" in preamble and [(s.title, s.div is None) for s in sections] == [("One", False), ("Two", True)]


def test_the_patient_holds_only_what_the_input_held(run):
    a, doc = run("raas-nitrofurantoin-allergy")
    [patient] = of_type(doc, "Patient")
    assert patient["gender"] == "female" and "Age 52" in patient["text"]["div"]
    assert set(patient) == {"resourceType", "id", "text", "gender"}  # no name, birth date, identifier
    unknown = fhir_document(a, None)
    assert "gender" not in of_type(unknown, "Patient")[0] and "Age not recorded" in of_type(unknown, "Patient")[0]["text"]["div"]


def test_a_deterministic_result_has_no_document():
    with pytest.raises(NotADocument):
        fhir_document(assess(load_sample("uncomplicated"), mode="deterministic"))


# --- the model package: every sample, every resource ------------------------------------------------

def test_every_sample_round_trips_through_the_r4_models(offline_pipeline):
    protocols = set()
    for name in sample_index():
        a = offline_pipeline.run(load_sample(name))
        docs = [document(offline_pipeline, a)]
        if a.status == "awaiting_signoff":
            signed = offline_pipeline.signoff(a.id, "approve", "RPh-1", "", acknowledged=[c.entry for c in a.plan.blocking_checks])
            docs.append(document(offline_pipeline, signed))
        for doc in docs:
            assert Bundle(doc, strict=True).as_json() == doc, name
            for entry in doc["entry"]:
                resource = entry["resource"]
                model = FHIRElementFactory.instantiate(resource["resourceType"], resource)  # strict by default
                assert model.as_json() == resource, (name, resource["resourceType"])
        assert (a.status == "awaiting_signoff") == bool(of_type(docs[-1], "Provenance"))
        protocols.add(sample_protocol(name))
    assert protocols == {"uti-cystitis", "lyme-pep"}


def test_the_models_refuse_what_r4_does_not_allow(run):
    _, doc = run("raas-nitrofurantoin-allergy")
    broken = {**doc, "entry": [{**doc["entry"][0], "resource": {k: v for k, v in doc["entry"][0]["resource"].items() if k != "title"}},
                               *doc["entry"][1:]]}
    with pytest.raises(FHIRValidationError, match="title"):
        Bundle(broken, strict=True)
    with pytest.raises(FHIRValidationError):
        Bundle({**doc, "timestamp": "yesterday"}, strict=True)


# --- the same shape as HL7's own examples ------------------------------------------------------------

def shape(value: Any) -> Any:
    """The JSON types of a value: dicts by key, lists by their first item."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    return "number" if isinstance(value, int | float) and not isinstance(value, bool) else type(value).__name__


def assert_same_shape(ours: Any, theirs: Any, path: str = "") -> None:
    """Where both have an element, it has the same JSON type (recursively)."""
    a, b = shape(ours), shape(theirs)
    if isinstance(a, dict) and isinstance(b, dict):
        for k in set(a) & set(b):
            assert_same_shape(ours[k], theirs[k], f"{path}.{k}")
    elif isinstance(a, list) and isinstance(b, list):
        assert bool(a) and bool(b), path
        assert_same_shape(ours[0], theirs[0], f"{path}[0]")
    else:
        assert type(a) is type(b) and (not isinstance(a, str) or a == b), (path, a, b)


def test_detected_issues_have_the_shape_of_hl7s_interaction_example(run, hl7_resource):
    ddi = hl7_resource("r4_examples", "DetectedIssue-ddi.json")
    Bundle({"resourceType": "Bundle", "type": "collection", "entry": [{"resource": ddi}]}, strict=True)  # HL7's own passes the models
    _, doc = run("lyme-warfarin-caution")
    [inr] = issues_for(doc, "CA-WARFARIN")
    shared = {"status", "code", "severity", "identifiedDateTime", "author", "implicated", "detail", "mitigation", "text"}
    assert shared <= set(ddi) and shared <= set(inr)
    assert_same_shape(inr, ddi)
    assert set(inr["code"]["coding"][0]) == set(ddi["code"]["coding"][0]) == {"system", "code", "display"}
    assert inr["severity"] in {"high", "moderate", "low"} and ddi["severity"] == "high"
    assert set(inr["mitigation"][0]["action"]) <= set(ddi["mitigation"][0]["action"])


@pytest.mark.parametrize(("package", "name"), [("r4_examples", "Composition-example.json"), ("ips", "Composition-composition-minimal.json")])
def test_the_composition_has_the_shape_of_hl7s(run, hl7_resource, package, name):
    theirs = hl7_resource(package, name)
    _, doc = run("raas-nitrofurantoin-allergy")
    ours = doc["entry"][0]["resource"]
    required = {"status", "type", "date", "author", "title"}  # Composition's 1..1 and 1..* elements in R4
    assert required <= set(theirs) and required <= set(ours)
    assert_same_shape(ours, theirs)
    assert ours["type"]["coding"][0]["system"] == theirs["type"]["coding"][0]["system"] == "http://loinc.org"
    for section in (theirs["section"][0], ours["section"][0]):
        assert section["text"]["status"] == "generated" and section["text"]["div"].startswith(XHTML_DIV)
        assert all(set(e) == {"reference"} for e in section["entry"])


def test_the_bundle_has_the_shape_of_the_ips_document_bundle(run, hl7_resource):
    theirs = hl7_resource("ips", "Bundle-bundle-minimal.json")
    _, ours = run("raas-nitrofurantoin-allergy")
    for bundle in (theirs, ours):
        assert bundle["type"] == "document" and {"system", "value"} <= set(bundle["identifier"]) and "timestamp" in bundle
        assert bundle["entry"][0]["resource"]["resourceType"] == "Composition"
        assert all(URN.match(e["fullUrl"]) and e["resource"]["id"] == e["fullUrl"].removeprefix("urn:uuid:") for e in bundle["entry"])
        composition = bundle["entry"][0]["resource"]
        patient = next(e for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient")
        assert composition["subject"]["reference"] == patient["fullUrl"]  # internal references by fullUrl
    assert_same_shape({k: v for k, v in ours.items() if k != "entry"}, {k: v for k, v in theirs.items() if k != "entry"})
    assert ours["timestamp"][:4].isdigit() and ours["identifier"]["system"] == "urn:ietf:rfc:3986"
