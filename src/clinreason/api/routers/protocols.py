"""GET /v1/protocols: what the registered protocols accept and decide."""

from typing import Any

from fastapi import APIRouter

from clinreason.api.deps import ReadKey
from clinreason.api.problems import problem_responses
from clinreason.protocols.registry import DEFAULT_PROTOCOL, registry

router = APIRouter(prefix="/v1/protocols", tags=["protocols"])


@router.get("", responses=problem_responses(401, 403, 429),
            summary="The registered protocols: profiles, options, decisions and each request's JSON schema")
def list_protocols(key: ReadKey) -> dict[str, Any]:
    return {"default": DEFAULT_PROTOCOL, "protocols": [spec.summary() for spec in registry().values()]}
