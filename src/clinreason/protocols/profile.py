"""Protocol profiles (jurisdiction parameters) and the rule catalogue, as data."""

from __future__ import annotations

import tomllib
from functools import cache, cached_property
from importlib import resources

from pydantic import BaseModel, ConfigDict, Field

from clinreason.protocols.result import FollowUp, Regimen, RegimenSpec

PROTOCOL_ID = "uti-cystitis"
PROTOCOL_VERSION = "1.0.0"


class Profile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    id: str
    version: str
    protocol: str
    title: str
    source: str
    min_age: int = Field(ge=0)
    renal_complicating_below: float
    recent_antibiotic_days: int
    agent_order: list[str]
    renal_exclusion_below: dict[str, float]
    regimens: dict[str, RegimenSpec]
    follow_up: FollowUp

    def regimen(self, agent: str) -> Regimen:
        return Regimen(agent=agent, **self.regimens[agent].model_dump())

    @cached_property
    def params(self) -> dict[str, str]:
        """Values that rule texts may reference as {placeholders}."""
        renal = ", ".join(f"{v:g}" for v in self.renal_exclusion_below.values())
        return {
            "min_age": str(self.min_age),
            "renal_complicating_below": f"{self.renal_complicating_below:g}",
            "recent_antibiotic_days": str(self.recent_antibiotic_days),
            "renal_exclusion_below": renal,
            "agent_order": ", ".join(self.agent_order),
        }


class RuleSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    id: str
    step: int
    title: str
    text: str
    source: str
    # A referral this rule triggers is same day, whatever its decision's usual
    # timeframe: new confusion or delirium may be sepsis; cystitis in pregnancy
    # needs treatment the pharmacist cannot give.
    same_day: bool = False


def _read_toml(package: str, name: str) -> dict:
    return tomllib.loads(resources.files(package).joinpath(name).read_text("utf-8"))


@cache
def available_profiles() -> dict[str, str]:
    """Profile id -> file name, for every bundled profile."""
    out: dict[str, str] = {}
    for entry in resources.files("clinreason.protocols.profiles").iterdir():
        if entry.name.endswith(".toml"):
            out[tomllib.loads(entry.read_text("utf-8"))["id"]] = entry.name
    return out


@cache
def load_profile(profile_id: str) -> Profile:
    files = available_profiles()
    if profile_id not in files:
        raise KeyError(profile_id)
    profile = Profile.model_validate(_read_toml("clinreason.protocols.profiles", files[profile_id]))
    missing = [a for a in profile.agent_order if a not in profile.regimens]
    if missing:
        raise ValueError(f"profile {profile_id}: no regimen for {missing}")
    return profile


@cache
def rule_catalog() -> dict[str, RuleSpec]:
    raw = _read_toml("clinreason.protocols", "rules.toml")
    return {rid: RuleSpec(id=rid, **spec) for rid, spec in raw.items()}


def rule_title(rule_id: str, profile: Profile) -> str:
    return rule_catalog()[rule_id].title.format(**profile.params)
