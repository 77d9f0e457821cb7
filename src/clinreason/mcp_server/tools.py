"""The tools and resources of the MCP server, the same over every transport (sign-off aside: http.py).

Each tool validates its typed arguments (the SDK answers a wrong type naming the argument),
then maps clinreason's errors to tool errors naming the field, so bad input is never a crash.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any, Literal

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import Field

from clinreason.assessment import Assessment, assess
from clinreason.errors import ClinreasonError, InvalidInput
from clinreason.mcp_server.models import KnowledgeHits, ProtocolInfo, ProtocolList, Report, RuleExplanation
from clinreason.mcp_server.runtime import Identify, Runtime, local_user
from clinreason.protocols.registry import get_spec, registry

log = logging.getLogger(__name__)

INSTRUCTIONS = ("Clinical reasoning for pharmacist prescribing protocols. list_protocols names them; assess runs one patient "
                "(JSON as the protocol's input schema resource, or a FHIR R4 Bundle); cite knowledge by chunk_id. "
                "A treatment plan is a draft until a prescriber signs it off.")
KINDS = Literal["policy", "monograph", "guideline"]


@contextmanager
def tool_errors() -> Iterator[None]:
    """clinreason's errors as tool errors that name the field; anything else as a logged internal error."""
    try:
        yield
    except ToolError:
        raise
    except ClinreasonError as exc:
        fields = "; ".join(f"{e['field']}: {e['message']}" for e in exc.field_errors())
        raise ToolError(f"{exc.title}: {exc.detail()}" + (f" ({fields})" if fields else "")) from None
    except Exception:
        log.exception("MCP tool failed")
        raise ToolError("internal error (logged on the server)") from None


def require(identify: Identify, ctx: Context, permission: str) -> Any:
    """The caller's API key if its role has `permission` (None: the local stdio user, who may read and assess)."""
    from clinreason.api.access import PERMISSIONS

    key = identify(ctx)
    if key is not None and permission not in PERMISSIONS[key.role]:
        raise ToolError(f"Role not permitted: role {key.role!r} cannot {permission}")
    return key


def build_server(runtime: Runtime, identify: Identify = local_user) -> MCPServer:
    """The server over `runtime`; `identify(ctx)` names the caller's API key (None: the local user)."""
    server = MCPServer("clinreason", version="0.1.0", instructions=INSTRUCTIONS)

    def site_of(ctx: Context) -> str | None:
        key = require(identify, ctx, "read")
        return None if key is None else key.site

    def note_access(ctx: Context, assessment_id: str | None) -> None:
        # Over HTTP the access log row of this request names the assessment (api/access.py).
        request = getattr(ctx.request_context, "request", None)
        if request is not None and assessment_id:
            from clinreason.api.access import audit_of

            audit_of(request).assessment_id = assessment_id

    @server.tool(description="The registered protocols: their profiles (locale codes, options in order) and decisions.")
    def list_protocols() -> ProtocolList:
        return ProtocolList(protocols=[ProtocolInfo.of(spec.summary()) for spec in registry().values()])

    @server.tool(name="assess", description="Assess one patient. `request` is a patient JSON (its `protocol` and `locale_code` inside) or a FHIR R4 "
                             "Bundle. mode=full runs the whole pipeline and stores the assessment (sign-off pending when it treats); "
                             "mode=deterministic only evaluates the protocol's rules and stores nothing.")
    async def assess_tool(  # not `assess`: that is clinreason.assess, called inside
        request: Annotated[dict[str, Any], Field(description="A patient JSON (see the protocol's input-schema resource) or a FHIR Bundle")],
        ctx: Context,
        mode: Literal["full", "deterministic"] = "full",
        protocol: Annotated[str | None, Field(description="A FHIR Bundle only: the protocol to assess")] = None,
        locale_code: Annotated[str | None, Field(description="A FHIR Bundle only: the profile's locale code")] = None,
    ) -> Assessment:
        with tool_errors():
            key = require(identify, ctx, "create")
            from clinreason.fhir.intake import read_request

            patient, sources = read_request(request, protocol=protocol, locale_code=locale_code)
            if mode == "deterministic":
                result = assess(patient, mode="deterministic")
                return result.model_copy(update={"input_sources": sources}) if sources else result
            result = await runtime.in_worker_thread(lambda: runtime.pipeline.run(patient, submitter=key, input_sources=sources))
            note_access(ctx, result.id)
            return result

    @server.tool(description="A stored assessment (full mode), by id.")
    async def get_assessment(assessment_id: Annotated[str, Field(min_length=1, max_length=64)], ctx: Context) -> Assessment:
        with tool_errors():
            site = site_of(ctx)
            note_access(ctx, assessment_id)
            return await runtime.in_worker_thread(lambda: runtime.pipeline.get(assessment_id, site=site))

    @server.tool(description="The clinician report of a stored assessment, as Markdown.")
    async def get_report(assessment_id: Annotated[str, Field(min_length=1, max_length=64)], ctx: Context) -> Report:
        with tool_errors():
            site = site_of(ctx)
            note_access(ctx, assessment_id)
            a = await runtime.in_worker_thread(lambda: runtime.pipeline.get(assessment_id, site=site))
            return Report(assessment_id=assessment_id, status=a.status or "", markdown=a.report_markdown or "")

    @server.tool(description="Search one knowledge base (a protocol under one of its profiles): policies, monographs, guidelines. "
                             "Returns passages best first, each with the chunk_id to cite.")
    async def search_knowledge(
        query: Annotated[str, Field(min_length=1, max_length=500)],
        ctx: Context,
        protocol: Annotated[str | None, Field(description="A protocol id; default: the default protocol")] = None,
        profile: Annotated[str | None, Field(description="A profile id of that protocol; default: its first")] = None,
        kind: Annotated[list[KINDS] | None, Field(description="Only passages of these kinds")] = None,
        k: Annotated[int, Field(ge=1, le=50)] = 5,
    ) -> KnowledgeHits:
        with tool_errors():
            require(identify, ctx, "read")
            from clinreason.knowledge.corpus import scope_of
            from clinreason.knowledge.retrieval import retrieve

            try:
                scope = scope_of(protocol, profile)
            except KeyError as exc:
                raise InvalidInput(exc.args[0]) from None
            settings = runtime.pipeline.settings
            hits = await runtime.in_worker_thread(lambda: retrieve(query, k, {"kind": kind} if kind else None, settings=settings, scope=scope))
            return KnowledgeHits(protocol=scope[0], profile=scope[1], query=query, hits=hits)

    @server.tool(description="What a rule of a protocol says, under one of its profiles: title, text, source, and its citation chunk.")
    def explain_rule(
        protocol: Annotated[str, Field(min_length=1, max_length=64)],
        rule_id: Annotated[str, Field(min_length=1, max_length=64, description="As in an assessment's protocol.rules_fired")],
        profile: Annotated[str | None, Field(description="A profile id of that protocol; default: its first")] = None,
    ) -> RuleExplanation:
        with tool_errors():
            spec = _spec(protocol)
            rule = spec.rules.get(rule_id)
            if rule is None:
                raise InvalidInput(f"protocol {spec.id} has no rule {rule_id!r}")
            prof = spec.profiles.get(profile or spec.default_profile.id)
            if prof is None:
                raise InvalidInput(f"protocol {spec.id} has no profile {profile!r} (profiles: {', '.join(spec.profiles)})")
            params = prof.params
            return RuleExplanation(protocol=spec.id, profile=prof.id, rule_id=rule.id, step=rule.step, title=rule.title.format(**params),
                                   text=rule.text.format(**params), source=rule.source.format(**params), decision=rule.decision,
                                   chunk_id=spec.rule_chunk_id(rule.id, prof.id))

    for spec in registry().values():
        _add_protocol_resources(server, spec.id)
    return server


def _spec(protocol: str) -> Any:
    try:
        return get_spec(protocol)
    except KeyError:
        raise InvalidInput(f"unknown protocol {protocol!r} (protocols: {', '.join(registry())})") from None


def _add_protocol_resources(server: MCPServer, protocol_id: str) -> None:
    spec = get_spec(protocol_id)

    def summary() -> str:
        return json.dumps({k: v for k, v in spec.summary().items() if k != "input_schema"}, indent=2)

    def input_schema() -> str:
        return json.dumps(spec.summary()["input_schema"], indent=2)

    server.resource(f"clinreason://protocols/{protocol_id}/summary", name=f"{protocol_id}-summary", mime_type="application/json",
                    title=f"{spec.title}: protocol summary", description="Profiles, options in order, decisions")(summary)
    server.resource(f"clinreason://protocols/{protocol_id}/input-schema", name=f"{protocol_id}-input-schema", mime_type="application/json",
                    title=f"{spec.title}: input JSON schema", description="The patient JSON that `assess` takes for this protocol")(input_schema)
