"""Probes and metrics (not in the access log: access.UNLOGGED_PREFIXES)."""

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from clinreason.api.deps import StateDep
from clinreason.api.openapi import READINESS

router = APIRouter(tags=["operations"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", responses={
    200: {"description": "Ready: every check is ok", "content": {"application/json": {"schema": READINESS}}},
    503: {"description": "A dependency is not ready", "content": {"application/json": {"schema": READINESS}}}})
def readyz(state: StateDep) -> Response:
    checks: dict[str, str] = {}
    st = state.ensure()
    for name, probe in (("store", lambda: state.pipeline.store.ping()), ("index", lambda: _index_ok(st["indexes"])),
                        ("warm", lambda: _warm_ok(st, state.settings)),
                        *((("redis", lambda: st["limiter"].ping()),) if state.settings.redis_url else ())):
        try:
            probe()
            checks[name] = "ok"
        except Exception as exc:  # report, do not raise: readiness is an answer, not an error
            checks[name] = f"error: {type(exc).__name__}"
    ok = all(v == "ok" for v in checks.values())
    return JSONResponse({"status": "ready" if ok else "not ready", "checks": checks}, status_code=200 if ok else 503)


@router.get("/metrics", response_class=PlainTextResponse)
def prometheus(state: StateDep) -> Response:
    return Response(generate_latest(state.metrics.registry), media_type=CONTENT_TYPE_LATEST)


def _index_ok(indexes: list[Any]) -> None:
    if not all(index.is_current for index in indexes):
        raise RuntimeError("index is stale")


def _warm_ok(state: dict[str, Any], settings: Any) -> None:
    """Warmed up, and every text the evidence plan can search for embedded: no assessment loads the model."""
    if not state.get("warmed"):
        raise RuntimeError("retrieval not warmed up")
    if state.get("evidence_embedded"):
        return
    from clinreason.knowledge.corpus import all_scopes
    from clinreason.knowledge.retrieval import missing_evidence_texts

    if any(missing_evidence_texts(settings, scope) for scope in all_scopes()):
        raise RuntimeError("evidence-plan queries not embedded")
    state["evidence_embedded"] = True
