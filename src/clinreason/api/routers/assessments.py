"""/v1/assessments: assess a patient, list and read assessments, sign one off.

Dependencies run in the order of the parameters: the key is checked before the body is read.
Errors of the pipeline and store (ClinreasonError) are answered by handlers.clinreason_error.
"""

import hashlib
import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import Response

from clinreason.api.access import audit_of
from clinreason.api.deps import (
    AppState,
    CreateKey,
    PatientBody,
    ReadKey,
    SignoffBody,
    SignoffKey,
    StateDep,
    check_owner,
    load_assessment,
)
from clinreason.api.openapi import REF, body_schema
from clinreason.api.problems import problem_responses
from clinreason.api.schemas import AssessmentPage, AssessmentSummary
from clinreason.assessment import Assessment, assess, validate
from clinreason.protocols.registry import registry
from clinreason.samples import load_sample, sample_index, sample_protocol
from clinreason.store import ApiKey

DETERMINISTIC = "-"  # the Idempotency-Key record of a deterministic result (which is not stored)

router = APIRouter(prefix="/v1/assessments", tags=["assessments"])


def _patient_body_schema() -> dict[str, Any]:
    # The body is read raw (so contradictions and unknown fields get our field errors), but documented
    # as one of the registered protocols' request schemas, with a bundled sample of each as an example.
    examples = {}
    for name in sample_index():
        examples.setdefault(sample_protocol(name), load_sample(name))
    return {"requestBody": {"required": True, "content": {"application/json": {
        "schema": {"$ref": REF.format(model="AssessmentRequest")},
        "examples": {pid: {"summary": registry()[pid].title, "value": value} for pid, value in examples.items()}}}}}


@router.post("", status_code=201, response_model=Assessment,
             openapi_extra=_patient_body_schema(),
             responses={201: {"description": "Assessed and stored (full mode)",
                              "headers": {"Location": {"description": "The stored assessment", "required": True, "schema": {"type": "string"}}}},
                        200: {"description": "Assessed, nothing stored (mode=deterministic); or the first answer again (a repeated Idempotency-Key)",
                              "model": Assessment,
                              "headers": {"Location": {"description": "The stored assessment (a repeated Idempotency-Key)", "schema": {"type": "string"}}}},
                        **problem_responses(400, 401, 403, 409, 413, 415, 422, 429, titles={
                            409: "A request with this Idempotency-Key is still running (Retry-After)",
                            422: "Invalid patient (field errors), invalid query or Idempotency-Key, or an Idempotency-Key used with another body"})},
             summary="Assess a patient (full pipeline by default)")
async def create_assessment(request: Request, key: CreateKey, request_body: PatientBody, state: StateDep,
                            mode: Annotated[Literal["full", "deterministic"], Query()] = "full",
                            idempotency_key: Annotated[str | None, Header(
                                min_length=1, max_length=200, pattern=r"^[\x20-\x7e]+$",  # the printable ASCII idempotent_replay accepts
                                description="Retry safely: the same key and body return the first result (200); "
                                            "the same key with another body is refused (422).")] = None) -> Response:
    patient = validate(request_body)  # locale too: reject before waiting for a worker
    if idempotency_key is not None:
        replay = idempotent_replay(state, key, idempotency_key, request_body, mode)
        if replay is not None:
            audit_of(request).assessment_id = replay.id
            return Response(replay.model_dump_json(), status_code=200, media_type="application/json",
                            headers={"Location": f"/v1/assessments/{replay.id}", "Idempotent-Replayed": "true"})
    try:
        if mode == "deterministic":
            result = assess(patient, mode="deterministic")
        else:
            result = await state.in_worker_thread(lambda: state.pipeline.run(patient, submitter=key))
    except BaseException:
        if idempotency_key is not None:
            state.pipeline.store.idempotency_release(key.key_id, idempotency_key)  # a failed first try claims nothing
        raise
    if idempotency_key is not None:
        state.pipeline.store.idempotency_done(key.key_id, idempotency_key, result.id or DETERMINISTIC)
    state.metrics.record(result)
    audit_of(request).assessment_id = result.id
    headers = {"Location": f"/v1/assessments/{result.id}"} if result.id else None
    return Response(result.model_dump_json(), status_code=201 if result.id else 200, headers=headers, media_type="application/json")


def idempotent_replay(state: AppState, key: ApiKey, idem: str, body: Any, mode: str) -> Assessment | None:
    """The earlier result of this Idempotency-Key (1-200 printable ASCII, checked by its Header declaration)
    with this body, or None on its first use. Another body: IdempotencyConflict; still running: IdempotencyInProgress."""
    digest = hashlib.sha256(json.dumps([mode, body], sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    earlier = state.pipeline.store.idempotency_claim(key.key_id, idem, digest)
    if earlier is None:
        return None
    if earlier == DETERMINISTIC:  # not stored: the deterministic result is a pure function of the body
        return assess(validate(body), mode="deterministic")
    return state.pipeline.get(earlier)


@router.get("", response_model=AssessmentPage, responses=problem_responses(401, 403, 422, 429))
def list_assessments(request: Request, key: ReadKey, state: StateDep,
                     status: Annotated[Literal["awaiting_signoff", "final"] | None, Query()] = None,
                     page: Annotated[int, Query(ge=1, le=100000)] = 1,
                     page_size: Annotated[int, Query(ge=1, le=100)] = 20) -> AssessmentPage:
    rows, total = state.pipeline.store.list(status, page_size, (page - 1) * page_size, site=key.site)
    audit_of(request).ids = [r["id"] for r in rows]
    plans = [r["plan"] or {} for r in rows]
    items = [AssessmentSummary(id=r["id"], status=r["status"], decision=r["decision"],
                               plan=plan.get("option") or plan.get("agent") or plan.get("action", ""),  # "agent": records before plug-ins
                               created_at=r["audit"]["created_at"]) for r, plan in zip(rows, plans, strict=True)]
    return AssessmentPage(items=items, page=page, page_size=page_size, total=total)


@router.get("/{assessment_id}", response_model=Assessment, responses=problem_responses(401, 403, 404, 429))
def get_assessment(assessment_id: str, key: ReadKey, state: StateDep) -> Assessment:
    return load_assessment(state, assessment_id, key)


@router.get("/{assessment_id}/report", response_class=Response,
            responses={200: {"description": "The report", "content": {"text/markdown": {"schema": {"type": "string"}}}},
                       **problem_responses(401, 403, 404, 429)})
def get_report(assessment_id: str, key: ReadKey, state: StateDep) -> Response:
    a = load_assessment(state, assessment_id, key)
    return Response(a.report_markdown or "", media_type="text/markdown; charset=utf-8")


@router.post("/{assessment_id}/signoff", response_model=Assessment,
             openapi_extra=body_schema("SignoffRequest"),
             responses=problem_responses(400, 401, 403, 404, 409, 413, 415, 422, 429), summary="Approve, amend or reject (prescriber)")
async def signoff(assessment_id: str, key: SignoffKey, body: SignoffBody, state: StateDep) -> Assessment:
    check_owner(state, assessment_id, key)  # after the body: a malformed body is a 400 whoever owns the assessment
    # The prescriber is the authenticated key, never a name in the body.
    return await state.in_worker_thread(lambda: state.pipeline.signoff(assessment_id, body.action, key.who, body.comment, body.agent,
                                                                       acknowledged=body.acknowledged, key_id=key.key_id))
