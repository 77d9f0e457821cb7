"""clinreason's MCP server driven by the SDK's own client, over stdio and Streamable HTTP: one assessment
end to end (the patient on an ACE inhibitor and a potassium-sparing diuretic, allergic to the first-line
option), its report, the knowledge base, a rule that fired, bad input, and who may sign off."""

from __future__ import annotations

from typing import Any

import anyio
import httpx
import pytest
from fhir_bundles import bundle_of
from mcp_clients import call, call_error, http_client, stdio_client, tool_names

from clinreason.samples import load_sample

SAMPLE = "raas-nitrofurantoin-allergy"
QUERY = "trimethoprim hyperkalemia with an ACE inhibitor"


async def scenario(client: Any) -> dict[str, Any]:
    """Every call the tests assert on, made once per transport."""
    patient = load_sample(SAMPLE)
    out: dict[str, Any] = {"tools": await tool_names(client), "protocols": await call(client, "list_protocols")}
    full = out["full"] = await call(client, "assess", request=patient, mode="full")
    out["deterministic"] = await call(client, "assess", request=patient, mode="deterministic")
    out["fhir"] = await call(client, "assess", request=bundle_of(patient), mode="deterministic")
    out["get"] = await call(client, "get_assessment", assessment_id=full["id"])
    out["report"] = await call(client, "get_report", assessment_id=full["id"])
    out["search"] = await call(client, "search_knowledge", query=QUERY, protocol="uti-cystitis", profile="CA-ON", kind=["policy"], k=5)
    excluded = [x["rule_id"] for o in full["protocol"]["options"] for x in o["exclusions"] if o["option"] == "trimethoprim"]
    out["explained"] = await call(client, "explain_rule", protocol="uti-cystitis", rule_id=excluded[0])
    out["bad_patient"] = await call_error(client, "assess", request={**patient, "age": "old"})
    out["bad_argument"] = await call_error(client, "search_knowledge", query=QUERY, k=0)
    out["bad_rule"] = await call_error(client, "explain_rule", protocol="uti-cystitis", rule_id="NO-SUCH-RULE")
    out["missing"] = await call_error(client, "get_assessment", assessment_id="0" * 32)
    out["resources"] = {str(r.uri) for r in (await client.list_resources()).resources}
    schema = await client.read_resource("clinreason://protocols/uti-cystitis/input-schema")
    out["input_schema"] = schema.contents[0].text
    out["signoff"] = await call_error(client, "signoff", assessment_id=full["id"], action="approve")
    return out


async def _over_stdio() -> dict[str, Any]:
    async with stdio_client() as client:
        return await scenario(client)


async def _over_http(url: str, key: str) -> dict[str, Any]:
    async with http_client(url, key) as client:
        return await scenario(client)


@pytest.fixture(scope="module", params=["stdio", "http"])
def run(request, mcp_url, mcp_keys) -> dict[str, Any]:
    if request.param == "stdio":
        return anyio.run(_over_stdio)
    return anyio.run(_over_http, mcp_url, mcp_keys["submitter"])


def test_tools_and_resources(run):
    assert {"list_protocols", "assess", "get_assessment", "get_report", "search_knowledge", "explain_rule"} <= run["tools"]
    assert {p["id"] for p in run["protocols"]["protocols"]} == {"uti-cystitis", "lyme-pep"}
    assert {"clinreason://protocols/uti-cystitis/summary", "clinreason://protocols/uti-cystitis/input-schema",
            "clinreason://protocols/lyme-pep/summary", "clinreason://protocols/lyme-pep/input-schema"} <= run["resources"]
    assert '"red_flags"' in run["input_schema"]


def test_assessment_end_to_end(run):
    full = run["full"]
    assert full["mode"] == "full" and full["id"] and full["status"] == "awaiting_signoff"
    assert full["decision"] == "recommend_treatment"
    assert full["recommendation"]["agent"] == "fosfomycin"
    options = {o["option"]: o for o in full["protocol"]["options"]}
    for excluded in ("trimethoprim", "tmp_smx"):
        assert not options[excluded]["allowed"]
        assert any(x["rule_id"] == "EX-HYPERKALEMIA" and "lisinopril" in x["evidence"] for x in options[excluded]["exclusions"])
    assert full["citations"] and all(c["chunk_id"].startswith("uti-cystitis/CA-ON/") for c in full["citations"])
    assert run["deterministic"]["recommendation"]["agent"] == "fosfomycin" and run["deterministic"]["id"] is None
    assert run["get"]["id"] == full["id"] and run["get"]["recommendation"]["agent"] == "fosfomycin"


def test_fhir_bundle_is_assessed_with_provenance(run):
    assert run["fhir"]["recommendation"]["agent"] == "fosfomycin"
    assert run["fhir"]["input_sources"]


def test_report_is_markdown(run):
    report = run["report"]
    assert report["assessment_id"] == run["full"]["id"] and report["status"] == "awaiting_signoff"
    assert report["markdown"].startswith("# ") and report["markdown"] == run["full"]["report_markdown"]
    assert "fosfomycin" in report["markdown"].lower()


def test_search_knowledge_filters(run):
    hits = run["search"]["hits"]
    assert hits and run["search"]["protocol"] == "uti-cystitis" and run["search"]["profile"] == "CA-ON"
    assert all(h["chunk_id"].startswith("uti-cystitis/CA-ON/") and h["kind"] == "policy" for h in hits)


def test_explain_rule_that_fired(run):
    rule = run["explained"]
    assert rule["rule_id"] == "EX-HYPERKALEMIA" and rule["title"] and rule["text"] and rule["source"]
    assert rule["chunk_id"] == "uti-cystitis/CA-ON/rules-ca-on#ex-hyperkalemia"


def test_bad_input_is_a_tool_error_naming_the_field(run):
    assert "age" in run["bad_patient"] and "Invalid patient" in run["bad_patient"]
    assert "search_knowledge" in run["bad_argument"] and "\nk\n" in run["bad_argument"]  # the SDK's pydantic error, by argument
    assert "NO-SUCH-RULE" in run["bad_rule"]
    assert "no assessment" in run["missing"]


def test_signoff_refused_to_submitter_and_absent_over_stdio(run):
    assert "signoff" not in run["tools"]
    assert "signoff" in run["signoff"]  # stdio: unknown tool; HTTP submitter: role not permitted


# --- HTTP only: keys, roles and sites -----------------------------------------------------------
def test_http_needs_an_api_key(mcp_url):
    response = httpx.post(mcp_url, json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
                          headers={"Accept": "application/json, text/event-stream"}, timeout=60)
    assert response.status_code == 401 and response.headers["content-type"].startswith("application/problem+json")
    bad = httpx.post(mcp_url, json={}, headers={"Authorization": "Bearer cr_nope_nope"}, timeout=60)
    assert bad.status_code == 401


async def _prescriber_flow(url: str, keys: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    async with http_client(url, keys["submitter"]) as client:
        created = await call(client, "assess", request=load_sample(SAMPLE))
        out["submitter_refused"] = await call_error(client, "signoff", assessment_id=created["id"], action="approve")
    async with http_client(url, keys["other_site"]) as client:
        out["other_site_read"] = await call_error(client, "get_report", assessment_id=created["id"])
        out["other_site_signoff"] = await call_error(client, "signoff", assessment_id=created["id"], action="approve")
    async with http_client(url, keys["prescriber"]) as client:
        out["tools"] = await tool_names(client)
        out["signed"] = await call(client, "signoff", assessment_id=created["id"], action="approve", comment="reviewed")
        out["again"] = await call_error(client, "signoff", assessment_id=created["id"], action="approve")
    return out


def test_http_signoff_only_with_a_prescriber_key(mcp_url, mcp_keys):
    out = anyio.run(_prescriber_flow, mcp_url, mcp_keys)
    assert "Role not permitted" in out["submitter_refused"] and "submitter" in out["submitter_refused"]
    assert "no assessment" in out["other_site_read"] and "no assessment" in out["other_site_signoff"]
    assert "signoff" in out["tools"]
    signed = out["signed"]
    assert signed["status"] == "final" and signed["signoff"]["action"] == "approve"
    assert signed["signoff"]["prescriber_id"] and "mcp-prescriber" in signed["signoff"]["prescriber_id"]
    assert "Not awaiting sign-off" in out["again"]
