"""The structured outputs of the MCP tools; `assess` and `get_assessment` return the `Assessment` itself."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from clinreason.knowledge.retrieval import Passage


class ProfileInfo(BaseModel):
    id: str
    version: str
    title: str
    locale_codes: list[str]
    options: list[str] = Field(description="Option ids in the profile's order of preference")


class ProtocolInfo(BaseModel):
    id: str
    version: str
    title: str
    profiles: list[ProfileInfo]
    decisions: list[str] = Field(description="The values `decision` can take")

    @classmethod
    def of(cls, summary: dict[str, Any]) -> ProtocolInfo:
        return cls(id=summary["id"], version=summary["version"], title=summary["title"],
                   profiles=[ProfileInfo.model_validate(p) for p in summary["profiles"]],
                   decisions=[d["value"] for d in summary["decisions"]])


class ProtocolList(BaseModel):
    protocols: list[ProtocolInfo]


class Report(BaseModel):
    assessment_id: str
    status: str
    markdown: str


class KnowledgeHits(BaseModel):
    protocol: str
    profile: str
    query: str
    hits: list[Passage] = Field(description="Best first; cite a passage by its chunk_id")


class RuleExplanation(BaseModel):
    protocol: str
    profile: str
    rule_id: str
    step: int = Field(description="The protocol's evaluation step")
    title: str
    text: str
    source: str
    decision: str = Field(description="The decision the rule gives, empty when it gives none")
    chunk_id: str = Field(description="The knowledge-base passage that states the rule (its citation target)")
