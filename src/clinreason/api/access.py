"""Who may do what, to which site's assessments, and the audit record of every request.

Roles say what a key may do; its site says to whose assessments. A submitter or
prescriber key belongs to one site (a pharmacy) and sees only that site's
assessments; an admin key is site-wide when it has a site, global when it has
none. Another site's assessment is answered 404, exactly as a missing one, so
ids cannot be probed across sites.

Every request to the API (operations probes and docs aside) is written to the
access log once its response is known, including 400, 401, 403, 413, 415, 429.
Routes fill in what they learn (the key, the assessment, the ids a list returned)
on `request.state`, and the app's middleware writes the row.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from clinreason.store import ApiKey

PERMISSIONS: dict[str, set[str]] = {
    "submitter": {"create", "read"},
    "prescriber": {"create", "read", "signoff"},
    "admin": {"create", "read", "signoff"},
}

# (method, route template) -> the action recorded; anything else under /v1 or unmatched is "other".
ACTIONS: dict[tuple[str, str], str] = {
    ("POST", "/v1/assessments"): "create",
    ("GET", "/v1/assessments"): "list",
    ("GET", "/v1/assessments/{assessment_id}"): "read",
    ("GET", "/v1/assessments/{assessment_id}/report"): "read_report",
    ("GET", "/v1/assessments/{assessment_id}/notification"): "read_notification",
    ("POST", "/v1/assessments/{assessment_id}/signoff"): "signoff",
    ("GET", "/v1/assessments/{assessment_id}/fhir"): "read_fhir",
    ("GET", "/v1/protocols/{protocol_id}/questionnaire"): "read_questionnaire",
    # CDS Hooks calls carry the EHR's JWT, not an API key: logged with no key, by action.
    ("GET", "/cds-services"): "cds_discovery",
    ("POST", "/cds-services/{service_id}"): "cds_hook",
    ("POST", "/cds-services/{service_id}/feedback"): "cds_feedback",
    # MCP over Streamable HTTP: one route for every tool call, authenticated with the same API keys.
    ("POST", "/mcp"): "mcp",
    ("GET", "/mcp"): "mcp",
    ("DELETE", "/mcp"): "mcp",
}
# Probes and documentation are not accesses to patient data: not logged (they would drown the log).
UNLOGGED_PREFIXES = ("/healthz", "/readyz", "/metrics", "/openapi.json", "/docs", "/redoc", "/static")


@dataclass
class RequestAudit:
    key: ApiKey | None = None
    assessment_id: str | None = None
    ids: list[str] | None = None


def audit_of(request: Any) -> RequestAudit:
    """The audit record of this request, created on first use (shared by middleware and routes)."""
    audit = getattr(request.state, "audit", None)
    if audit is None:
        audit = request.state.audit = RequestAudit()
    return audit


def is_logged(path: str) -> bool:
    return not path.startswith(UNLOGGED_PREFIXES)


def action_for(method: str, route_path: str | None) -> str:
    if route_path is None:
        return "unmatched"
    return ACTIONS.get((method, route_path), "other")

