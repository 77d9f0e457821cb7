"""The cystitis protocol's profile parameters and decision values."""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from clinreason.protocols.profile import Profile

PROTOCOL_ID = "uti-cystitis"
PROTOCOL_VERSION = "1.0.0"


class Decision(StrEnum):
    recommend_treatment = "recommend_treatment"
    refer_urgent = "refer_urgent"
    refer_complicated = "refer_complicated"
    refer_recurrence = "refer_recurrence"
    refer_no_safe_option = "refer_no_safe_option"
    no_antibiotics = "no_antibiotics"


class UtiProfile(Profile):
    min_age: int = Field(ge=0)
    renal_complicating_below: float
    recent_antibiotic_days: int
    renal_exclusion_below: dict[str, float]
    nsaid_renal_caution_below: float = 60  # eGFR/CrCl below which an NSAID is a medication-review caution

    def extra_params(self) -> dict[str, str]:
        return {
            "min_age": str(self.min_age),
            "renal_complicating_below": f"{self.renal_complicating_below:g}",
            "recent_antibiotic_days": str(self.recent_antibiotic_days),
            "renal_exclusion_below": ", ".join(f"{v:g}" for v in self.renal_exclusion_below.values()),
            "nsaid_renal_caution_below": f"{self.nsaid_renal_caution_below:g}",
        }
