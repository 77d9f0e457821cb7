"""Assessments stored before protocols were plug-ins (old field names, unscoped chunk ids) are still
read, listed and served: a deployment upgrading keeps its records."""

from __future__ import annotations

import json
import re

from clinreason.assessment import Assessment
from clinreason.graph.nodes import Nodes
from clinreason.samples import load_sample

RENAMES = {"options": "agents", "option": "agent"}


def to_legacy(obj):
    """The JSON of an assessment as the release before plug-ins stored it."""
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            if k == "cautions":  # new since: the release before had none to rename
                out[k] = v
                continue
            if k == "plan" or k == "safety":  # Plan.option was "agent"
                v = to_legacy_plan(v)
            out[RENAMES.get(k, k) if k in ("options", "option") and not isinstance(v, (int, float)) else k] = to_legacy(v)
        return out
    if isinstance(obj, list):
        return [to_legacy(x) for x in obj]
    if isinstance(obj, str):
        return re.sub(r"uti-cystitis/CA-ON/rules-ca-on#", "policy-uti-ca-on#", obj).replace("uti-cystitis/CA-ON/", "")
    return obj


def to_legacy_plan(v):
    if isinstance(v, dict) and "plan" in v:
        return {**v, "plan": to_legacy_plan(v["plan"])}
    if isinstance(v, dict) and "action" in v:
        return {**v, "action": "no_antibiotics" if v["action"] == "no_treatment" else v["action"]}
    return v


def test_a_legacy_record_reads_as_today(offline_pipeline) -> None:
    for name in ("warfarin", "criteria-not-met"):
        a = offline_pipeline.run(load_sample(name))
        record = {**a.model_dump(mode="json"), "updated_at": "2026-11-30T00:00:00+00:00"}
        legacy = to_legacy(record)
        assert "agent" in json.dumps(legacy["plan"]) or legacy["plan"]["action"] == "no_antibiotics"
        assert "agents" in legacy["protocol"] and "policy-uti-ca-on#" in json.dumps(legacy["citations"])
        old = Assessment.from_record(legacy)
        assert old.plan == a.plan and old.protocol == a.protocol and old.decision == a.decision


def test_the_api_serves_and_lists_a_legacy_record(api, offline_pipeline) -> None:
    a = offline_pipeline.run(load_sample("warfarin"))
    legacy = to_legacy({**a.model_dump(mode="json"), "id": "legacy0000000000000000000000000001", "updated_at": "2026-11-30T00:00:00+00:00"})
    offline_pipeline.store.put(legacy, site="pharmacy-a", submitted_by=None)
    r = api.client.get(f"/v1/assessments/{legacy['id']}", headers=api.headers("submitter"))
    assert r.status_code == 200 and r.json()["plan"]["option"] == "trimethoprim"
    listed = api.client.get("/v1/assessments", headers=api.headers("submitter"), params={"page_size": 100}).json()["items"]
    assert next(i for i in listed if i["id"] == legacy["id"])["plan"] == "trimethoprim"


def test_a_checkpointed_state_with_unscoped_evidence_still_finds_its_passages() -> None:
    state = {"evidence": [{"chunk_id": "policy-uti-ca-on#ex-renal", "why": "rule EX-RENAL"},
                          {"chunk_id": "monograph-tmp-smx#renal-function", "why": "monograph"}]}
    assert sorted(Nodes._passages(state)) == ["uti-cystitis/CA-ON/monograph-tmp-smx#renal-function",
                                              "uti-cystitis/CA-ON/rules-ca-on#ex-renal"]
