"""The scripted EHR through discovery, order-select, order-sign, patient-view, prefetch and feedback.
Every answer is validated against the spec's models (conftest.EhrClient); the clinical facts are asserted."""

from __future__ import annotations

import pytest
from cds_ehr import SITE, draft, hook_request, prefetch_of, record
from fhir_bundles import about
from fhirclient.models.medicationrequest import MedicationRequest

from clinreason.cds_hooks.models import HOOKS
from clinreason.fhir.questionnaire import canonical_url
from clinreason.protocols.registry import registry
from clinreason.samples import load_sample

SELECT, SIGN, VIEW = "uti-cystitis-order-select", "uti-cystitis-order-sign", "uti-cystitis-patient-view"


def _warnings(response):
    return [c for c in response.cards if c.indicator in ("warning", "critical")]


def test_discovery_lists_one_service_per_protocol_and_hook(client):
    found = client.discover()
    assert {s.id: s.hook for s in found.services} == {f"{p}-{h}": h for p in registry() for h in HOOKS}
    for s in found.services:
        protocol = s.id.removesuffix(f"-{s.hook}")
        assert s.description and s.title
        assert s.prefetch["patient"] == "Patient/{{context.patientId}}"
        assert s.prefetch["medicationStatements"] == "MedicationStatement?patient={{context.patientId}}&status=active"
        assert f"questionnaire={canonical_url(protocol)}" in s.prefetch["questionnaireResponse"]
    assert "http://loinc.org|62238-1" in next(s for s in found.services if s.id == SELECT).prefetch["observations"]


def test_ordering_an_excluded_option_is_critical_says_why_and_swaps(client):
    """On methotrexate: TMP-SMX is excluded (bone-marrow toxicity); the swap is to fosfomycin, the first allowed."""
    order = draft("rx1", "Septra DS 800/160 mg 1 tab BID x 3 days")
    answer = client.call(SELECT, hook_request("order-select", prefetch_of(record(load_sample("methotrexate"))), [order]))
    [card] = answer.cards
    assert card.indicator == "critical" and card.uuid
    assert "TMP-SMX" in card.summary and "Methotrexate" in card.summary
    assert "EX-METHOTREXATE" in card.detail and "Methotrexate 15 mg weekly" in card.detail
    assert card.selectionBehavior == "at-most-one" and card.overrideReasons and all(r.display for r in card.overrideReasons)
    assert card.source.label and card.source.url.startswith("http://testserver/")
    [swap] = card.suggestions
    assert swap.uuid and swap.isRecommended and "Fosfomycin" in swap.label
    delete, create = swap.actions
    assert (delete.type, delete.resourceId) == ("delete", "MedicationRequest/rx1")
    assert create.type == "create" and "fosfomycin" in create.resource["medicationCodeableConcept"]["text"]
    assert create.resource["subject"] == {"reference": "Patient/p1"} and create.resource["status"] == "draft"
    MedicationRequest(create.resource, strict=True)  # a valid FHIR R4 resource


def test_ordering_the_allowed_option_gives_no_warning(client):
    order = draft("rx1", "Monurol (fosfomycin) 3 g sachet once")
    answer = client.call(SELECT, hook_request("order-select", prefetch_of(record(load_sample("methotrexate"))), [order]))
    assert _warnings(answer) == []


def test_order_select_checks_the_selections_and_order_sign_every_draft(client):
    prefetch = prefetch_of(record(load_sample("raas-nitrofurantoin-allergy")))
    orders = [draft("ok", "fosfomycin 3 g"), draft("bad", "trimethoprim 200 mg daily x 3 days")]
    selected = client.call(SELECT, hook_request("order-select", prefetch, orders, selections=["MedicationRequest/ok"]))
    assert _warnings(selected) == []
    signed = client.call(SIGN, hook_request("order-sign", prefetch, orders))
    [card] = _warnings(signed)
    # On lisinopril and spironolactone: hyperkalemia excludes trimethoprim.
    assert card.indicator == "critical" and "Trimethoprim" in card.summary and "lisinopril" in card.detail
    assert card.suggestions[0].actions[0].resourceId == "MedicationRequest/bad"


def test_a_referral_gets_its_own_card_and_no_swap(client):
    """Fever, rigors, flank pain: same-day referral, so ordering nitrofurantoin is critical and the suggestion cancels it."""
    order = draft("rx1", "nitrofurantoin monohydrate/macrocrystals 100 mg BID x 5 days")
    answer = client.call(SELECT, hook_request("order-select", prefetch_of(record(load_sample("red-flags-older-adult"))), [order]))
    [card] = answer.cards
    assert card.indicator == "critical" and card.summary.startswith("Refer, do not prescribe")
    assert "refer_urgent" in card.detail and "fever" in card.detail.lower()
    [cancel] = card.suggestions
    assert [(a.type, a.resourceId) for a in cancel.actions] == [("delete", "MedicationRequest/rx1")]


def test_no_treatment_decision_is_a_warning(client):
    answer = client.call(SELECT, hook_request("order-select", prefetch_of(record(load_sample("criteria-not-met"))),
                                              [draft("rx1", "Macrobid 100 mg")]))
    [card] = answer.cards
    assert card.indicator == "warning" and card.summary.startswith("Treatment not indicated")


def test_another_protocol_through_the_same_seam(client):
    """Isotretinoin contraindicates doxycycline: the exclusion card, and the referral card."""
    sample = load_sample("lyme-isotretinoin")
    answer = client.call("lyme-pep-order-select", hook_request("order-select", prefetch_of(record(sample)),
                                                               [draft("rx1", "doxycycline 200 mg once")]))
    by_kind = {c.summary.split(":")[0]: c for c in answer.cards}
    assert by_kind["Do not use Doxycycline"].indicator == "critical" and "Accutane" in by_kind["Do not use Doxycycline"].detail
    assert by_kind["Refer, do not prescribe"].indicator == "warning"  # a referral within 24-48 h, not same day


def test_orders_the_protocol_does_not_cover_get_no_card(client, hl7_resource):
    """HL7's MedicationRequest example (a contained Medication) is not one of the protocol's options."""
    hl7_order = about(hl7_resource("r4_examples", "MedicationRequest-medrx0302.json"))
    hl7_order = {**hl7_order, "status": "draft"}
    answer = client.call(SELECT, hook_request("order-select", prefetch_of(record(load_sample("methotrexate"))), [hl7_order]))
    assert answer.cards == []
    # The same example ordering TMP-SMX through its contained Medication is recognised.
    hl7_order["contained"][0]["code"] = {"text": "sulfamethoxazole-trimethoprim 800/160 mg tablet"}
    answer = client.call(SELECT, hook_request("order-select", prefetch_of(record(load_sample("methotrexate"))), [hl7_order]))
    assert [c.indicator for c in answer.cards] == ["critical"]


def test_patient_view_summarises_and_links_the_stored_full_report(client, app_client, offline_pipeline):
    """Coumadin and a Macrobid allergy: trimethoprim; the full offline assessment is stored for the EHR's site."""
    answer = client.call(VIEW, hook_request("patient-view", prefetch_of(record(load_sample("warfarin")))))
    [card] = answer.cards
    assert card.indicator == "info" and "trimethoprim" in card.summary.lower()
    assert "excluded" in card.detail and "Coumadin" in card.detail
    [link] = card.links
    assert link.type == "absolute" and link.url.startswith("http://testserver/v1/assessments/") and link.url.endswith("/report")
    assessment_id = link.url.split("/")[-2]
    key = offline_pipeline.store.create_key("cds-reader", "submitter", SITE)
    report = app_client.get(f"/v1/assessments/{assessment_id}/report", headers={"Authorization": f"Bearer {key}"})
    assert report.status_code == 200 and "Trimethoprim" in report.text
    stored = offline_pipeline.store.get(assessment_id, site=SITE)
    assert stored["decision"] == "recommend_treatment"
    assert {"field": "history.meds[0]", "source": "MedicationStatement/m0.medicationCodeableConcept"} in stored["input_sources"]["fields"]


def test_patient_view_with_hl7_pregnancy_status_refers(client, hl7_resource):
    """HL7 IPS's pregnancy-status observation (pregnant) in the observations prefetch: refer."""
    obs = about(hl7_resource("ips", "Observation-pregnancy-status-example.json"))
    for element in ("hasMember", "performer"):
        obs.pop(element, None)
    sample = {k: v for k, v in load_sample("uncomplicated").items() if k != "pregnancy_status"}
    resources = [r for r in record({**sample, "pregnancy_status": "unknown"}) if r["resourceType"] != "QuestionnaireResponse"]
    qr = next(r for r in record(sample | {"pregnancy_status": "unknown"}) if r["resourceType"] == "QuestionnaireResponse")
    qr["item"] = [i for i in qr["item"] if i["linkId"] != "pregnancy_status"]
    answer = client.call(VIEW, hook_request("patient-view", prefetch_of([*resources, qr, obs])))
    [card] = answer.cards
    assert card.indicator == "warning" and "refer" in card.summary and "refer_complicated" in card.detail


def test_patient_view_of_a_patient_without_answers_says_nothing(client):
    prefetch = prefetch_of([r for r in record(load_sample("warfarin")) if r["resourceType"] != "QuestionnaireResponse"])
    assert client.call(VIEW, hook_request("patient-view", prefetch)).cards == []


def test_ordering_an_option_without_answers_names_what_is_missing(client):
    prefetch = prefetch_of([r for r in record(load_sample("warfarin")) if r["resourceType"] != "QuestionnaireResponse"])
    [card] = client.call(SELECT, hook_request("order-select", prefetch, [draft("rx1", "Bactrim DS")])).cards
    assert card.indicator == "warning" and "not assessed" in card.summary
    assert "QuestionnaireResponse.item[symptoms.dysuria]" in card.detail


# --- prefetch ---------------------------------------------------------------------------------
def test_a_missing_prefetch_without_fhir_server_is_412(client):
    prefetch = prefetch_of(record(load_sample("methotrexate")), keys=("patient", "questionnaireResponse"))
    r = client.post(SELECT, hook_request("order-select", prefetch, [draft("rx1", "Septra DS")]))
    assert r.status_code == 412 and r.headers["content-type"].startswith("application/problem+json")
    fields = {e["field"] for e in r.json()["errors"]}
    assert {"prefetch.medicationStatements", "prefetch.allergies"} <= fields and "prefetch.patient" not in fields


def test_a_missing_prefetch_is_fetched_from_the_fhir_server(client, fhir_server):
    resources = record(load_sample("methotrexate"))
    full = prefetch_of(resources)
    given = {k: v for k, v in full.items() if k not in ("medicationStatements", "allergies")}
    fhir_server.serve("MedicationStatement?patient=p1&status=active", full["medicationStatements"])
    fhir_server.serve("AllergyIntolerance?patient=p1", full["allergies"])
    body = hook_request("order-select", given, [draft("rx1", "Septra DS")], fhirServer=fhir_server.base,
                        fhirAuthorization={"access_token": "fhir-token-1", "token_type": "Bearer", "expires_in": 300,
                                           "scope": "user/MedicationStatement.read user/AllergyIntolerance.read", "subject": "clinreason"})
    [card] = client.call(SELECT, body).cards
    assert card.indicator == "critical" and "Methotrexate" in card.summary  # the fetched medication list decided it
    assert sorted(p.split("?")[0] for p, _ in fhir_server.requests) == ["/fhir/AllergyIntolerance", "/fhir/MedicationStatement"]
    assert {auth for _, auth in fhir_server.requests} == {"Bearer fhir-token-1"}


def test_a_failing_fhir_server_is_412(client, fhir_server):
    full = prefetch_of(record(load_sample("methotrexate")))
    given = {k: v for k, v in full.items() if k != "medicationStatements"}
    fhir_server.serve("MedicationStatement?patient=p1&status=active", {"resourceType": "OperationOutcome"}, status=500)
    r = client.post(SELECT, hook_request("order-select", given, [draft("rx1", "Septra DS")], fhirServer=fhir_server.base))
    assert r.status_code == 412 and "500" in r.json()["detail"]


def test_an_operation_outcome_in_prefetch_counts_as_missing(client):
    full = prefetch_of(record(load_sample("methotrexate")))
    full["medicationStatements"] = {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "timeout"}]}
    r = client.post(SELECT, hook_request("order-select", full, [draft("rx1", "Septra DS")]))
    assert r.status_code == 412 and r.json()["errors"] == [{"field": "prefetch.medicationStatements",
                                                             "message": "not sent, and could not be fetched"}]


# --- feedback ---------------------------------------------------------------------------------
@pytest.fixture
def issued(client):
    answer = client.call(SELECT, hook_request("order-select", prefetch_of(record(load_sample("methotrexate"))),
                                              [draft("rx1", "Septra DS")]))
    return answer.cards[0]


def test_feedback_accepted_and_overridden_is_stored(client, issued, offline_pipeline):
    accepted = {"card": issued.uuid, "outcome": "accepted", "acceptedSuggestions": [{"id": issued.suggestions[0].uuid}],
                "outcomeTimestamp": "2026-12-01T10:05:31Z"}
    reason = issued.overrideReasons[0]
    overridden = {"card": issued.uuid, "outcome": "overridden", "outcomeTimestamp": "2026-12-01T10:06:00Z",
                  "overrideReason": {"reason": {"code": reason.code, "system": reason.system}, "userComment": "discussed with the physician"}}
    r = client.feedback(SELECT, [accepted, overridden])
    assert r.status_code == 200, r.text
    rows = offline_pipeline.store.cds_feedback(issued.uuid)
    assert [(x["outcome"], x["accepted_suggestions"]) for x in rows] == [("accepted", [issued.suggestions[0].uuid]), ("overridden", [])]
    assert rows[1]["override_reason"]["reason"]["code"] == reason.code
    assert rows[1]["override_reason"]["userComment"] == "discussed with the physician"


def test_feedback_on_unknown_cards_or_suggestions_is_refused(client, issued):
    r = client.feedback(SELECT, [{"card": "no-such-card", "outcome": "overridden", "outcomeTimestamp": "2026-12-01T10:00:00Z"},
                                 {"card": issued.uuid, "outcome": "accepted", "acceptedSuggestions": [{"id": "nope"}],
                                  "outcomeTimestamp": "2026-12-01T10:00:00Z"}])
    assert r.status_code == 422
    assert [e["field"] for e in r.json()["errors"]] == ["feedback[0].card", "feedback[1].acceptedSuggestions[0].id"]
    # Another service's card is unknown to this one.
    r = client.feedback(SIGN, [{"card": issued.uuid, "outcome": "overridden", "outcomeTimestamp": "2026-12-01T10:00:00Z"}])
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "feedback[0].card"


@pytest.mark.parametrize("item, field", [
    ({"outcome": "accepted", "outcomeTimestamp": "2026-12-01T10:00:00Z"}, "feedback[0]"),  # accepted without suggestions
    ({"outcome": "maybe", "outcomeTimestamp": "2026-12-01T10:00:00Z"}, "feedback[0].outcome"),
    ({"outcome": "overridden", "outcomeTimestamp": "yesterday"}, "feedback[0].outcomeTimestamp"),
    ({"outcome": "overridden", "outcomeTimestamp": "2026-12-01T10:00:00"}, "feedback[0].outcomeTimestamp"),  # no zone
])
def test_malformed_feedback_is_400(client, issued, item, field):
    r = client.feedback(SELECT, [{"card": issued.uuid, **item}])
    assert r.status_code == 400 and field in [e["field"] for e in r.json()["errors"]]
