"""GET /v1/protocols: what the registered protocols accept and decide."""

import json
from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response

from clinreason.api.deps import ReadKey
from clinreason.api.problems import ApiError, problem_responses
from clinreason.protocols.registry import DEFAULT_PROTOCOL, registry

router = APIRouter(prefix="/v1/protocols", tags=["protocols"])


@router.get("", responses=problem_responses(401, 403, 429),
            summary="The registered protocols: profiles, options, decisions and each request's JSON schema")
def list_protocols(key: ReadKey) -> dict[str, Any]:
    return {"default": DEFAULT_PROTOCOL, "protocols": [spec.summary() for spec in registry().values()]}


@router.get("/{protocol_id}/questionnaire", responses={200: {"content": {"application/fhir+json": {}}, "description": "A FHIR R4 Questionnaire"},
                                                       **problem_responses(401, 403, 404, 429)},
            summary="The protocol's FHIR R4 Questionnaire, generated from its input model: answer it in the Bundle you POST")
def protocol_questionnaire(protocol_id: str, key: ReadKey) -> Response:
    from clinreason.fhir.intake import FHIR_JSON
    from clinreason.fhir.questionnaire import questionnaire

    spec = registry().get(protocol_id)
    if spec is None:
        raise ApiError(404, "Not found", f"no protocol {protocol_id!r} (available: {', '.join(sorted(registry()))})", "not-found")
    return Response(json.dumps(questionnaire(spec)), media_type=FHIR_JSON)
