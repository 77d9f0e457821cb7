"""Output of the deterministic protocol node."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, computed_field


class Decision(StrEnum):
    recommend_treatment = "recommend_treatment"
    refer_urgent = "refer_urgent"
    refer_complicated = "refer_complicated"
    refer_recurrence = "refer_recurrence"
    refer_no_safe_option = "refer_no_safe_option"
    no_antibiotics = "no_antibiotics"


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True)


class RuleHit(_Out):
    """A protocol rule that applied to this patient."""

    rule_id: str
    title: str
    detail: str = Field(description="What in the patient made the rule apply.")


class Exclusion(_Out):
    """Why one agent may not be used for this patient."""

    rule_id: str
    reason: str
    evidence: str = Field(description="The patient data that triggered the exclusion.")
    sources: list[str] = Field(default_factory=list)


class UnverifiedEntry(_Out):
    """An entry the formulary does not recognise, and the agents it leaves unverified.

    What is not recognised is not trusted: the entry might be any interacting
    drug (a medication) or any agent (an allergy, a recent antibiotic)."""

    field: str = Field(description="Where the entry is, e.g. 'history.meds[2]'.")
    entry: str = Field(description="The entry as given (after text hygiene).")
    reason: str
    agents: list[str] = Field(description="Agents whose exclusions this entry could change.")


class AgentEvaluation(_Out):
    agent: str
    rank: int = Field(description="1 = most preferred in the profile's order.")
    exclusions: list[Exclusion] = Field(default_factory=list)
    unverified_by: list[str] = Field(
        default_factory=list, description="Fields of unrecognised entries that could exclude this agent (see unverified_entries)."
    )

    @computed_field  # type: ignore[prop-decorator]
    @property
    def allowed(self) -> bool:
        return not self.exclusions

    @computed_field  # type: ignore[prop-decorator]
    @property
    def verified(self) -> bool:
        """Allowed with every entry that could exclude it recognised."""
        return self.allowed and not self.unverified_by


class RegimenSpec(_Out):
    """A regimen as a profile states it."""

    drug: str
    dose: str
    route: str
    frequency: str
    duration: str
    note: str | None = None


class Regimen(RegimenSpec):
    """A regimen for one protocol agent."""

    agent: str

    @property
    def text(self) -> str:
        return f"{self.drug} {self.dose} {self.route} {self.frequency} x {self.duration}"


class FollowUp(_Out):
    reassess: str
    escalate_if: list[str]
    notify_primary_prescriber: bool
    signoff_required: bool


class Flag(_Out):
    """Something the prescriber must look at that does not change the decision."""

    code: str
    message: str


class DrugMatch(_Out):
    """A free-text medication, allergy or antibiotic entry and what it matched."""

    text: str
    drugs: list[str] = Field(default_factory=list)
    ingredients: list[str] = Field(default_factory=list)
    classes: list[str] = Field(default_factory=list)
    named_classes: list[str] = Field(
        default_factory=list, description="Classes named in the text itself (e.g. 'sulfa')."
    )
    non_drug: list[str] = Field(
        default_factory=list, description="What the entry names that is not a medicine ('latex'), or 'none' for NKDA / nil."
    )
    unknown_words: list[str] = Field(
        default_factory=list, description="Words nothing in the formulary accounts for; any one leaves the entry unrecognised."
    )
    spelling_corrections: list[str] = Field(default_factory=list)
    antibacterial: bool = Field(default=False, description="The entry names an antibiotic.")

    @computed_field  # type: ignore[prop-decorator]
    @property
    def recognized(self) -> bool:
        """Fail-safe: it names something, and every word of it is accounted for."""
        return bool(self.drugs or self.classes or self.non_drug) and not self.unknown_words


class ProtocolResult(_Out):
    protocol_id: str
    protocol_version: str
    profile_id: str
    profile_version: str
    decision: Decision
    rules_fired: list[RuleHit]
    agents: list[AgentEvaluation]
    recommendation: Regimen | None = None
    alternatives: list[Regimen] = Field(default_factory=list)
    follow_up: FollowUp | None = None
    flags: list[Flag] = Field(default_factory=list)
    unverified_entries: list[UnverifiedEntry] = Field(default_factory=list)
    blocking_checks: list[UnverifiedEntry] = Field(
        default_factory=list,
        description="The unverified entries behind the recommended agent: sign-off approval is refused until the prescriber acknowledges each.",
    )
    medications: list[DrugMatch] = Field(default_factory=list)
    allergies: list[DrugMatch] = Field(default_factory=list)
    recent_antibiotics: list[DrugMatch] = Field(default_factory=list)

    def find_agent(self, agent_id: str) -> AgentEvaluation | None:
        return next((a for a in self.agents if a.agent == agent_id), None)

    def agent(self, agent_id: str) -> AgentEvaluation:
        found = self.find_agent(agent_id)
        if found is None:
            raise KeyError(agent_id)
        return found

    @property
    def allowed_agents(self) -> list[str]:
        return [a.agent for a in self.agents if a.allowed]

    @property
    def selectable_agents(self) -> list[str]:
        """Agents a plan may use: the verified allowed ones while any remain, else the unverified allowed ones."""
        verified = [a.agent for a in self.agents if a.verified]
        return verified or self.allowed_agents

    def checks_for(self, agent_id: str) -> list[UnverifiedEntry]:
        """The unverified entries a prescriber must acknowledge before this agent is dispensed."""
        return [e for e in self.unverified_entries if agent_id in e.agents]

    @property
    def rule_ids(self) -> list[str]:
        return [r.rule_id for r in self.rules_fired]
