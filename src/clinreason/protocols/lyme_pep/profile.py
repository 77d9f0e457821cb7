"""The Lyme prophylaxis protocol's profile parameters and decision values."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import Field, model_validator

from clinreason.protocols.profile import Profile
from clinreason.protocols.result import FollowUp

PROTOCOL_ID = "lyme-pep"
PROTOCOL_VERSION = "1.0.0"


class Decision(StrEnum):
    recommend_prophylaxis = "recommend_prophylaxis"
    refer_symptomatic = "refer_symptomatic"
    refer_contraindicated = "refer_contraindicated"
    no_prophylaxis = "no_prophylaxis"


class LymeProfile(Profile):
    window_hours: float = Field(gt=0)  # removed no more than this long ago
    min_attachment_hours: float = Field(gt=0)  # estimated attachment at least this long
    child_age_below: int = Field(gt=0)  # younger than this: the weight-based dose
    child_mg_per_kg: float = Field(gt=0)
    child_max_mg: int = Field(gt=0)
    child_rounding_mg: int = Field(gt=0)
    # The only choices the protocol offers: a typo in a profile is an error at load, never a silent "allow".
    pregnancy: Literal["refer"]  # refer_contraindicated
    breastfeeding: Literal["allowed_counsel"]  # allowed, with a caution
    symptom_watch_days: int = Field(gt=0)

    @model_validator(mode="after")
    def _cap_is_a_dose(self) -> LymeProfile:
        if self.child_max_mg % self.child_rounding_mg:
            raise ValueError(f"child_max_mg {self.child_max_mg} is not a multiple of child_rounding_mg {self.child_rounding_mg}")
        return self

    def follow_up_without_prescription(self) -> FollowUp:
        """The follow-up when nothing is prescribed: the same watch, no notice to the primary care provider
        and no sign-off (built once per profile)."""
        return self._memo("_unprescribed_follow_up", self.follow_up, lambda: self.follow_up.model_copy(
            update={"notify_primary_prescriber": False, "signoff_required": False}))

    def extra_params(self) -> dict[str, str]:
        return {
            "window_hours": f"{self.window_hours:g}",
            "min_attachment_hours": f"{self.min_attachment_hours:g}",
            "child_age_below": str(self.child_age_below),
            "child_mg_per_kg": f"{self.child_mg_per_kg:g}",
            "child_max_mg": str(self.child_max_mg),
            "child_rounding_mg": str(self.child_rounding_mg),
            "symptom_watch_days": str(self.symptom_watch_days),
        }
