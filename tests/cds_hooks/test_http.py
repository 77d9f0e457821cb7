"""The scripted EHR over real HTTP: uvicorn on a free 127.0.0.1 port, stopped at teardown."""

from __future__ import annotations

import httpx
from cds_ehr import Ehr, EhrClient, draft, hook_request, prefetch_of, record

from clinreason.samples import load_sample

SELECT = "uti-cystitis-order-select"


def test_discovery_call_and_feedback_over_http(http_server, keys, fhir_server):
    ehr = Ehr(keys, http_server)
    with httpx.Client(base_url=http_server, timeout=30) as http:
        client = EhrClient(http, ehr)
        assert SELECT in {s.id for s in client.discover().services}

        # Prefetch-complete: on lisinopril and spironolactone, TMP-SMX is excluded.
        prefetch = prefetch_of(record(load_sample("raas-nitrofurantoin-allergy")))
        [card] = client.call(SELECT, hook_request("order-select", prefetch, [draft("rx1", "Bactrim DS")])).cards
        assert card.indicator == "critical" and "lisinopril" in card.detail

        # Prefetch-missing: 412 without a FHIR server; fetched from the EHR's when it gives one.
        partial = {k: v for k, v in prefetch.items() if k != "medicationStatements"}
        assert client.post(SELECT, hook_request("order-select", partial, [draft("rx1", "Bactrim DS")])).status_code == 412
        fhir_server.serve("MedicationStatement?patient=p1&status=active", prefetch["medicationStatements"])
        fetched = client.call(SELECT, hook_request("order-select", partial, [draft("rx1", "Bactrim DS")], fhirServer=fhir_server.base))
        assert [c.summary for c in fetched.cards] == [card.summary]

        r = client.feedback(SELECT, [{"card": card.uuid, "outcome": "accepted", "acceptedSuggestions": [{"id": card.suggestions[0].uuid}],
                                      "outcomeTimestamp": "2026-12-01T10:05:31Z"}])
        assert r.status_code == 200

        preflight = http.options(f"/cds-services/{SELECT}", headers={"Origin": "https://ehr.example.org", "Access-Control-Request-Method": "POST"})
        assert preflight.status_code == 200 and preflight.headers["access-control-allow-origin"] == "*"
        # The token's audience is the URL the EHR called: the in-process base URL is refused here.
        wrong = client.post(SELECT, hook_request("order-select", prefetch, [draft("rx1", "Bactrim DS")]),
                            Ehr(keys, "http://testserver").auth(SELECT))
        assert wrong.status_code == 401
