"""The API's own request and response models (the core `Assessment` lives in clinreason.assessment)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class SignoffRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"action": "approve", "comment": "Reviewed; INR check arranged."},
        {"action": "amend", "agent": "<an allowed option id>", "comment": "Patient prefers a single dose."},
    ]})
    action: Literal["approve", "amend", "reject"]
    comment: str = Field(default="", max_length=2000)
    agent: str | None = Field(default=None, description="With amend: an option id the protocol allows for this patient.")
    acknowledged: list[str] = Field(
        default_factory=list, max_length=200,
        description="Blocking checks the prescriber has checked by hand: each unrecognised entry's text (or its field, "
                    "e.g. history.meds[2]). Approval is refused with 409 until every blocking check of the plan is listed.")


class AssessmentSummary(BaseModel):
    id: str
    status: str
    decision: str
    plan: str
    created_at: str


class AssessmentPage(BaseModel):
    items: list[AssessmentSummary]
    page: int
    page_size: int
    total: int
