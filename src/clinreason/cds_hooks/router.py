"""/cds-services: CDS Hooks 2.0 discovery, the hook services, and their feedback endpoints.

Order of work for a hook call: the service, the EHR's JWT, the body (400 naming the field), the
prefetch (fetched from fhirServer when a key is missing, else 412), the FHIR intake, the protocol's
deterministic evaluation, the cards. patient-view also runs the full offline assessment and links
its report, when the offline rules backend is configured (milliseconds, well inside the hook's
budget); an LLM-backed run could take seconds, so then the card carries the deterministic summary only.

The routes are left out of the OpenAPI document: EHRs read the CDS Hooks discovery document, and
these endpoints take the EHR's JWT, not the API keys the OpenAPI document describes.
"""

from typing import Any

import anyio.to_thread
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ValidationError

from clinreason.api.body import read_json
from clinreason.api.deps import state_of
from clinreason.api.problems import ApiError
from clinreason.cds_hooks.auth import Client, Unauthorized, Verifier
from clinreason.cds_hooks.cards import (
    CardContext,
    cards_for,
    not_assessed_card,
    summary_card,
)
from clinreason.cds_hooks.models import (
    CONTEXTS,
    Card,
    CdsResponse,
    FeedbackRequest,
    HookRequest,
    Link,
    Source,
)
from clinreason.cds_hooks.orders import draft_orders
from clinreason.cds_hooks.prefetch import PrefetchFailed, collection, complete
from clinreason.cds_hooks.services import CdsService, discovery, services
from clinreason.errors import InvalidPatient
from clinreason.store import ApiKey, CdsCard

router = APIRouter(prefix="/cds-services", tags=["cds-hooks"], include_in_schema=False)
_discovery: dict[str, Any] | None = None


def _runtime(request: Request) -> Verifier:
    """One verifier per app (its replay memory and JWK Set caches), created on first use."""
    verifier = getattr(request.app.state, "cds_hooks", None)
    if verifier is None:
        verifier = request.app.state.cds_hooks = Verifier(state_of(request).settings)
    return verifier


def _base(request: Request) -> str:
    return (state_of(request).settings.cds_hooks_base_url or str(request.base_url)).rstrip("/")


def _service(service_id: str) -> CdsService:
    found = services().get(service_id)
    if found is None:
        raise ApiError(404, "Not found", f"no CDS service {service_id[:100]!r}; GET /cds-services lists them", "not-found")
    return found


async def _authenticate(request: Request, audiences: list[str]) -> Client:
    verifier = _runtime(request)
    try:  # a thread: fetching a JWK Set is blocking I/O
        return await anyio.to_thread.run_sync(lambda: verifier.verify(request.headers.get("authorization"), audiences))
    except Unauthorized as exc:
        raise ApiError(401, "Unauthorized", str(exc)[:500], "cds-hooks-unauthorized",
                       headers={"WWW-Authenticate": 'Bearer error="invalid_token"'}) from None


def _field(loc: tuple[Any, ...], prefix: str) -> str:
    out = prefix
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(root)"


def _parse(model: type[BaseModel], data: Any, prefix: str = "") -> Any:
    """`data` as `model`, or a 400 naming each field (a malformed hook request is the client's bug)."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = [{"field": _field(e["loc"], prefix), "message": e["msg"]} for e in exc.errors()[:20]]
        raise ApiError(400, "Malformed CDS Hooks request", "the body is not a valid CDS Hooks request; `errors` names the fields",
                       "malformed-cds-hooks-request", errors) from None


@router.get("")
async def discover() -> JSONResponse:
    # Public, as the spec's examples have it: it lists services and their prefetch, no patient data.
    global _discovery
    if _discovery is None:
        _discovery = discovery().dump()
    return JSONResponse(_discovery)


@router.post("/{service_id}")
async def call_service(service_id: str, request: Request) -> JSONResponse:
    service = _service(service_id)
    url = f"{_base(request)}/cds-services/{service.id}"
    client = await _authenticate(request, [url])
    hook = _parse(HookRequest, await read_json(request, "a CDS Hooks request"))
    if hook.hook != service.hook:
        raise ApiError(400, "Malformed CDS Hooks request", f"service {service.id} answers the {service.hook} hook",
                       "malformed-cds-hooks-request", [{"field": "hook", "message": f"expected {service.hook!r}, got {hook.hook[:60]!r}"}])
    context = _parse(CONTEXTS[service.hook], hook.context, "context")
    try:
        prefetch = await complete(hook, service.prefetch, state_of(request).settings.cds_hooks_fhir_timeout, client.config.fhir_servers)
    except PrefetchFailed as exc:
        raise ApiError(412, "Precondition failed", str(exc), "prefetch-missing",
                       [{"field": f"prefetch.{k}", "message": "not sent, and could not be fetched"} for k in exc.keys] or None) from None
    patient = prefetch.get("patient")
    if isinstance(patient, dict) and patient.get("id") not in (None, context.patientId):
        raise ApiError(400, "Malformed CDS Hooks request", "the prefetched patient is not the patient in context",
                       "malformed-cds-hooks-request", [{"field": "prefetch.patient.id", "message": f"expected {context.patientId!r}"}])

    ctx = CardContext(source=Source(label=f"clinreason: {service.spec.title}", url=f"{_base(request)}/cds-services"),
                      patient_reference=f"Patient/{context.patientId}")
    assessed = await anyio.to_thread.run_sync(lambda: _assess(service, prefetch, client))
    if service.hook == "patient-view":
        if isinstance(assessed, InvalidPatient) and not _answered(prefetch.get("questionnaireResponse")):
            cards, assessment_id = [], None  # the protocol's questions are unanswered: not a patient it is assessing
        else:
            cards, assessment_id = await _patient_view(request, service, assessed, client, ctx)
    else:
        cards, assessment_id = await anyio.to_thread.run_sync(lambda: _order_cards(service, context, assessed, ctx)), None
    store = state_of(request).pipeline.store
    issued = [CdsCard(c.uuid or "", c.indicator, c.summary, tuple(s.uuid for s in c.suggestions or () if s.uuid)) for c in cards]
    await anyio.to_thread.run_sync(lambda: store.put_cds_cards(service.id, hook.hookInstance, client.issuer, issued, assessment_id))
    return JSONResponse(CdsResponse(cards=cards).dump())


def _assess(service: CdsService, prefetch: dict[str, Any], client: Client) -> Any:
    """(validated, result, provenance), or the InvalidPatient of a record that does not settle the protocol's input."""
    from clinreason.fhir.intake import intake_bundle

    try:
        intake = intake_bundle(collection(prefetch), protocol_id=service.spec.id, locale_code=client.config.locale_code)
        validated = intake.validated
    except InvalidPatient as exc:
        return exc
    return validated, validated.evaluate(), intake.provenance()


def _answered(prefetch_value: Any) -> bool:
    if not isinstance(prefetch_value, dict):
        return False
    return prefetch_value.get("resourceType") != "Bundle" or bool(prefetch_value.get("entry"))


def _order_cards(service: CdsService, context: Any, assessed: Any, ctx: CardContext) -> list[Card]:
    only = context.selections if service.hook == "order-select" else None
    orders = draft_orders(context.draftOrders.model_dump(), service.spec.formulary, only)
    if isinstance(assessed, InvalidPatient):
        # An option is being ordered and the protocol could not check it: say so, naming what is missing.
        return [not_assessed_card(service.spec.title, assessed.errors, "warning", ctx)] if any(o.options for o in orders) else []
    validated, result, _ = assessed
    return cards_for(validated, result, orders, ctx)


async def _patient_view(request: Request, service: CdsService, assessed: Any, client: Client,
                        ctx: CardContext) -> tuple[list[Card], str | None]:
    if isinstance(assessed, InvalidPatient):
        return [not_assessed_card(service.spec.title, assessed.errors, "info", ctx)], None
    validated, result, provenance = assessed
    state = state_of(request)
    if state.settings.agent_backend != "rules":
        return [summary_card(validated, result, ctx)], None
    submitter = ApiKey(key_id="cds-hooks", name=f"CDS Hooks client {client.issuer}"[:200], role="submitter", site=client.config.site)
    if client.config.site is not None:
        await anyio.to_thread.run_sync(lambda: state.pipeline.store.ensure_site(client.config.site or ""))
    assessment = await state.in_worker_thread(lambda: state.pipeline.run(validated, submitter=submitter, input_sources=provenance))
    report = Link(label="Full clinreason report", url=f"{_base(request)}/v1/assessments/{assessment.id}/report", type="absolute")
    return [summary_card(validated, result, CardContext(ctx.source, ctx.patient_reference, report))], assessment.id


@router.post("/{service_id}/feedback")
async def feedback(service_id: str, request: Request) -> Response:
    service = _service(service_id)
    url = f"{_base(request)}/cds-services/{service.id}"
    client = await _authenticate(request, [url, f"{url}/feedback"])
    body: FeedbackRequest = _parse(FeedbackRequest, await read_json(request, "CDS Hooks feedback"))
    store = state_of(request).pipeline.store
    issued = await anyio.to_thread.run_sync(lambda: store.cds_cards([f.card for f in body.feedback]))
    errors = []
    for i, item in enumerate(body.feedback):
        card = issued.get(item.card)
        if card is None or card["service_id"] != service.id or card["issuer"] != client.issuer:
            errors.append({"field": f"feedback[{i}].card", "message": f"no card {item.card[:64]!r} was issued by {service.id} to this client"})
            continue
        for j, accepted in enumerate(item.acceptedSuggestions or ()):
            if accepted.id not in card["suggestions"]:
                errors.append({"field": f"feedback[{i}].acceptedSuggestions[{j}].id", "message": f"card {item.card[:64]!r} has no such suggestion"})
    if errors:
        raise ApiError(422, "Invalid feedback", "the feedback names cards or suggestions this service did not issue",
                       "invalid-cds-hooks-feedback", errors)
    items = [item.model_dump(mode="json", exclude_none=True) for item in body.feedback]
    await anyio.to_thread.run_sync(lambda: store.add_cds_feedback(service.id, client.issuer, items))
    return Response(status_code=200)


__all__ = ["router"]
