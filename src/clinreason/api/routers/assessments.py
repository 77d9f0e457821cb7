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
from clinreason.api.problems import PROBLEM_SCHEMA, problem_responses
from clinreason.api.schemas import AssessmentPage, AssessmentSummary
from clinreason.assessment import Assessment, assess
from clinreason.errors import NotAcceptable
from clinreason.protocols.registry import Validated, registry
from clinreason.rendering import (
    Document,
    notification_document,
    patient_from_checkpoint,
    report_document,
)
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
        "examples": {pid: {"summary": registry()[pid].title, "value": value} for pid, value in examples.items()}},
        "application/fhir+json": {"schema": {"type": "object", "required": ["resourceType"], "properties": {"resourceType": {"const": "Bundle"}},
                                             "description": "A FHIR R4 Bundle: Patient, Observation, MedicationStatement/MedicationRequest, "
                                                            "AllergyIntolerance, Condition and a QuestionnaireResponse to "
                                                            "GET /v1/protocols/{id}/questionnaire (docs/fhir-and-cds-hooks.md)"}}}}}


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
                            protocol: Annotated[str | None, Query(min_length=1, max_length=64, description=
                                "A FHIR Bundle only: the protocol to assess (default: the one whose Questionnaire the "
                                "QuestionnaireResponse answers)")] = None,
                            locale_code: Annotated[str | None, Query(min_length=2, max_length=10, description=
                                "A FHIR Bundle only: the profile's locale, when the QuestionnaireResponse does not answer it")] = None,
                            idempotency_key: Annotated[str | None, Header(
                                min_length=1, max_length=200, pattern=r"^[\x20-\x7e]+$",  # the printable ASCII idempotent_replay accepts
                                description="Retry safely: the same key and body return the first result (200); "
                                            "the same key with another body is refused (422).")] = None) -> Response:
    # locale too: reject before waiting for a worker
    patient, sources = parse_body(request_body, request.headers.get("content-type", ""), protocol, locale_code)
    if idempotency_key is not None:
        replay = idempotent_replay(state, key, idempotency_key, request_body, mode, (protocol, locale_code))
        if replay is not None:
            audit_of(request).assessment_id = replay.id
            return Response(replay.model_dump_json(), status_code=200, media_type="application/json",
                            headers={"Location": f"/v1/assessments/{replay.id}", "Idempotent-Replayed": "true"})
    try:
        if mode == "deterministic":
            result = assess(patient, mode="deterministic")
            result = result.model_copy(update={"input_sources": sources}) if sources else result
        else:
            result = await state.in_worker_thread(lambda: state.pipeline.run(patient, submitter=key, input_sources=sources))
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


def parse_body(body: Any, content_type: str, protocol: str | None, locale_code: str | None) -> tuple[Validated, dict[str, Any] | None]:
    """The validated request and, for a FHIR Bundle (declared application/fhir+json, or any Bundle),
    where each field came from."""
    from clinreason.fhir.intake import FHIR_JSON, read_request

    declared = content_type.split(";", 1)[0].strip().lower() == FHIR_JSON
    return read_request(body, fhir=declared, protocol=protocol, locale_code=locale_code)


def idempotent_replay(state: AppState, key: ApiKey, idem: str, body: Any, mode: str,
                      query: tuple[str | None, str | None] = (None, None)) -> Assessment | None:
    """The earlier result of this Idempotency-Key (1-200 printable ASCII, checked by its Header declaration)
    with this body, or None on its first use. Another body: IdempotencyConflict; still running: IdempotencyInProgress."""
    digest = hashlib.sha256(json.dumps([mode, body, *([list(query)] if any(query) else [])], sort_keys=True,
                                       separators=(",", ":")).encode()).hexdigest()
    earlier = state.pipeline.store.idempotency_claim(key.key_id, idem, digest)
    if earlier is None:
        return None
    if earlier == DETERMINISTIC:  # not stored: the deterministic result is a pure function of the body
        patient, sources = parse_body(body, "", *query)
        result = assess(patient, mode="deterministic")
        return result.model_copy(update={"input_sources": sources}) if sources else result
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


# --- documents: the report and the primary-care notification, by Accept ----------------------------
# Markdown is the default (no Accept, */*, text/*); HTML and PDF are rendered from it (rendering/).
DOCUMENT_TYPES = ("text/markdown", "text/html", "application/pdf")
CHARSET = {"text/markdown": "; charset=utf-8", "text/html": "; charset=utf-8", "application/pdf": ""}


def _media_ranges(accept: str) -> list[tuple[str, float]]:
    """(media range, q) of an Accept header; ranges with a malformed q are ignored (RFC 9110, 12.5.1)."""
    out = []
    for part in accept.split(","):
        fields = [f.strip() for f in part.split(";")]
        media = fields[0].lower()
        if not media:
            continue
        q = 1.0
        for param in fields[1:]:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value.strip())
                except ValueError:
                    q = -1.0
        if 0.0 <= q <= 1.0 and media.count("/") == 1:
            out.append((media, q))
    return out


def negotiate(accept: str | None, offered: tuple[str, ...] = DOCUMENT_TYPES) -> str:
    """The offered type the Accept header prefers: the most specific matching range gives a type its
    q; the highest q wins, ties in the order offered (Markdown first). NotAcceptable when none has q > 0."""
    if accept is None or not accept.strip():
        return offered[0]
    ranges = _media_ranges(accept)
    best, best_q = None, 0.0
    for media in offered:
        kind = media.split("/")[0]
        matches = [(3 if r == media else 2 if r == f"{kind}/*" else 1, q) for r, q in ranges if r in (media, f"{kind}/*", "*/*")]
        q = max(matches)[1] if matches else 0.0
        if q > best_q:
            best, best_q = media, q
    if best is None:
        raise NotAcceptable(f"none of the accepted types ({accept[:200]}) is offered", offered)
    return best


def _document(doc: Document, media: str) -> Response:
    """The document as `media`; a PDF that cannot be made is a 503 problem (PdfUnavailable)."""
    headers = {"Vary": "Accept"}
    if media == "application/pdf":
        headers["Content-Disposition"] = f'inline; filename="{doc.filename(media)}"'
    return Response(doc.render(media), media_type=media + CHARSET[media], headers=headers)


def _document_responses(what: str) -> dict[int | str, dict[str, Any]]:
    problem = {"application/problem+json": {"schema": PROBLEM_SCHEMA}}
    return {
        200: {"description": f"{what}, as the Accept header asks: Markdown (the default, and for */*), one self-contained HTML "
                             "file, or PDF (with Content-Disposition and a filename)",
              "headers": {"Vary": {"description": "Accept: the body depends on it", "schema": {"type": "string"}}},
              "content": {"text/markdown": {"schema": {"type": "string"}}, "text/html": {"schema": {"type": "string"}},
                          "application/pdf": {"schema": {"type": "string", "format": "binary"}}}},
        **problem_responses(401, 403, 404),
        406: {"description": "None of the accepted types is offered; `errors` lists the supported ones "
                             "(text/markdown, text/html, application/pdf)", "content": problem},
        **problem_responses(429),
        503: {"description": "The PDF could not be made on this server (WeasyPrint missing or failed); Markdown and HTML still work",
              "content": problem},
    }


_ACCEPT_NOTE = ("Choose the format with `Accept`: `text/markdown` (the default, also for `*/*`), `text/html` (one "
                "self-contained file: inline CSS, nothing fetched) or `application/pdf` (page numbers, the assessment id and "
                "status on every page, and DRAFT while it awaits sign-off). Any other type is answered 406.")


@router.get("/{assessment_id}/report", response_class=Response, responses=_document_responses("The clinician report"),
            summary="The clinician report (Markdown, HTML or PDF)", description=_ACCEPT_NOTE)
def get_report(request: Request, assessment_id: str, key: ReadKey, state: StateDep) -> Response:
    media = negotiate(request.headers.get("accept"))
    a = load_assessment(state, assessment_id, key)
    return _document(report_document(a), media)


@router.get("/{assessment_id}/notification", response_class=Response,
            responses=_document_responses("The notification to the patient's primary care provider"),
            summary="The notification to the patient's primary care provider (Markdown, HTML or PDF)",
            description="What was prescribed (or advised), why, the cautions and the follow-up, with blank lines for the "
                        "patient's identifiers, which clinreason does not hold. " + _ACCEPT_NOTE)
def get_notification(request: Request, assessment_id: str, key: ReadKey, state: StateDep) -> Response:
    media = negotiate(request.headers.get("accept"))
    a = load_assessment(state, assessment_id, key)
    patient = patient_from_checkpoint(state.pipeline.graph.checkpointer, assessment_id)
    return _document(notification_document(a, patient), media)


@router.post("/{assessment_id}/signoff", response_model=Assessment,
             openapi_extra=body_schema("SignoffRequest"),
             responses=problem_responses(400, 401, 403, 404, 409, 413, 415, 422, 429), summary="Approve, amend or reject (prescriber)")
async def signoff(assessment_id: str, key: SignoffKey, body: SignoffBody, state: StateDep) -> Assessment:
    check_owner(state, assessment_id, key)  # after the body: a malformed body is a 400 whoever owns the assessment
    # The prescriber is the authenticated key, never a name in the body.
    return await state.in_worker_thread(lambda: state.pipeline.signoff(assessment_id, body.action, key.who, body.comment, body.agent,
                                                                       acknowledged=body.acknowledged, key_id=key.key_id))
