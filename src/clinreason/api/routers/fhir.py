"""GET /v1/assessments/{id}/fhir: a stored assessment as a FHIR R4 document Bundle (clinreason.fhir.document).

The same access control as every read (a read key; another site's assessment is a 404), and the
same Accept negotiation as the report: `application/fhir+json` (the default), or `application/json`
for clients that know no FHIR media type; anything else is a 406 listing both.
"""

import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from clinreason.api.deps import ReadKey, StateDep, load_assessment
from clinreason.api.problems import PROBLEM_SCHEMA, problem_responses
from clinreason.api.routers.assessments import negotiate
from clinreason.fhir.document import fhir_document
from clinreason.rendering import patient_from_checkpoint

FHIR_JSON, JSON = "application/fhir+json", "application/json"
OFFERED = (FHIR_JSON, JSON)

router = APIRouter(prefix="/v1/assessments", tags=["fhir"])

_BUNDLE_SCHEMA = {"type": "object", "required": ["resourceType", "type", "identifier", "timestamp", "entry"],
                  "description": "A FHIR R4 Bundle of type document (http://hl7.org/fhir/R4/bundle.html): the Composition first.",
                  "properties": {"resourceType": {"const": "Bundle"}, "type": {"const": "document"}}}
_PROBLEM = {"application/problem+json": {"schema": PROBLEM_SCHEMA}}
_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "The document Bundle: Composition (the report's sections), Patient, Device (the author), a draft "
                         "MedicationRequest proposal or a ServiceRequest referral, a DetectedIssue per exclusion and caution, "
                         "and a Provenance once a prescriber signed",
          "headers": {"Vary": {"description": "Accept: the body's media type depends on it", "schema": {"type": "string"}}},
          "content": {FHIR_JSON: {"schema": _BUNDLE_SCHEMA}, JSON: {"schema": _BUNDLE_SCHEMA}}},
    **problem_responses(401, 403, 404),
    406: {"description": "None of the accepted types is offered; `errors` lists the supported ones (application/fhir+json, "
                         "application/json)", "content": _PROBLEM},
    **problem_responses(429),
    503: {"description": "The FHIR models (the `fhir` extra) are not installed on this server", "content": _PROBLEM},
}


@router.get("/{assessment_id}/fhir", response_class=Response, responses=_RESPONSES,
            summary="The assessment as a FHIR R4 document Bundle",
            description="Choose the media type with `Accept`: `application/fhir+json` (the default, also for `*/*`) or "
                        "`application/json`; the body is the same. Any other type is answered 406. Every resource is "
                        "validated with fhirclient's R4 models before it is sent.")
def get_fhir_document(request: Request, assessment_id: str, key: ReadKey, state: StateDep) -> Response:
    media = negotiate(request.headers.get("accept"), OFFERED)
    a = load_assessment(state, assessment_id, key)
    patient = patient_from_checkpoint(state.pipeline.graph.checkpointer, assessment_id)
    body = json.dumps(fhir_document(a, patient), ensure_ascii=False, separators=(",", ":"))
    return Response(body.encode("utf-8"), media_type=media, headers={"Vary": "Accept"})
