"""Output of the deterministic protocol node: the same shape for every protocol.

A protocol's decision values come from its own decision table (`ProtocolSpec.decisions`);
an *option* is a drug the protocol may recommend.
"""

from __future__ import annotations

from typing import Any

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, computed_field

from clinreason.formulary import DrugMatch


# Stored records written before protocols were plug-ins name options "agents" / "agent": each is read
# as today's field, the new name first. An alias choice is resolved by the validator itself (a
# before-validator would cost a Python call on every result built).
_LEGACY_OPTIONS = AliasChoices("options", "agents")


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True)


def renamed(data: Any, names: dict[str, str]) -> Any:
    """A stored record written before protocols were plug-ins, with its old field names read as
    today's (old -> new), so assessments stored then can still be read and signed off."""
    if isinstance(data, dict) and any(old in data and new not in data for old, new in names.items()):
        return {names.get(k, k) if names.get(k, k) not in data else k: v for k, v in data.items()}
    return data


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
    """An entry the formulary does not recognise, and the options it leaves unverified.

    What is not recognised is not trusted: the entry might be any interacting
    drug (a medication) or any option (an allergy, a recent use)."""

    field: str = Field(description="Where the entry is, e.g. 'history.meds[2]'.")
    entry: str = Field(description="The entry as given (after text hygiene).")
    reason: str
    options: list[str] = Field(validation_alias=_LEGACY_OPTIONS, description="Options whose exclusions this entry could change.")


class OptionEvaluation(_Out):
    option: str = Field(validation_alias=AliasChoices("option", "agent"))
    rank: int = Field(description="1 = most preferred in the profile's order.")
    exclusions: list[Exclusion] = Field(default_factory=list)
    unverified_by: list[str] = Field(
        default_factory=list, description="Fields of unrecognised entries that could exclude this option (see unverified_entries)."
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


class Caution(_Out):
    """A finding that never changes the decision: the report states it with its action."""

    rule_id: str
    option: str | None = Field(default=None, description="The option it concerns; None for the patient as a whole.")
    severity: str = Field(description="major | moderate | minor | counsel")
    message: str
    action: str
    evidence: str
    sources: list[str] = Field(default_factory=list)
    actions: list[str] = Field(default_factory=list, description=(
        "Codes of what the action asks for, 'kind:target' (kinds in protocols/actions.py), e.g. 'monitor:inr'."))


class Flag(_Out):
    """Something the prescriber must look at that does not change the decision."""

    code: str
    message: str


class ProtocolResult(_Out):
    protocol_id: str
    protocol_version: str
    profile_id: str
    profile_version: str
    decision: str = Field(description="A value from the protocol's decision table.")
    rules_fired: list[RuleHit]
    options: list[OptionEvaluation] = Field(validation_alias=_LEGACY_OPTIONS)
    recommendation: Regimen | None = None
    alternatives: list[Regimen] = Field(default_factory=list)
    follow_up: FollowUp | None = None
    flags: list[Flag] = Field(default_factory=list)
    unverified_entries: list[UnverifiedEntry] = Field(default_factory=list)
    blocking_checks: list[UnverifiedEntry] = Field(
        default_factory=list,
        description="The unverified entries behind the recommended option: sign-off approval is refused until the prescriber acknowledges each.",
    )
    medications: list[DrugMatch] = Field(default_factory=list)
    allergies: list[DrugMatch] = Field(default_factory=list)
    recent_antibiotics: list[DrugMatch] = Field(default_factory=list)
    cautions: list[Caution] = Field(
        default_factory=list, description="Findings that never change the decision; each states the action the prescriber or patient takes.")

    def find_option(self, option_id: str) -> OptionEvaluation | None:
        return next((a for a in self.options if a.option == option_id), None)

    def option(self, option_id: str) -> OptionEvaluation:
        found = self.find_option(option_id)
        if found is None:
            raise KeyError(option_id)
        return found

    @property
    def allowed_options(self) -> list[str]:
        return [a.option for a in self.options if a.allowed]

    @property
    def selectable_options(self) -> list[str]:
        """Options a plan may use: the verified allowed ones while any remain, else the unverified allowed ones."""
        verified = [a.option for a in self.options if a.verified]
        return verified or self.allowed_options

    def checks_for(self, option_id: str) -> list[UnverifiedEntry]:
        """The unverified entries a prescriber must acknowledge before this option is dispensed."""
        return [e for e in self.unverified_entries if option_id in e.options]

    def regimen_for(self, option_id: str) -> Regimen | None:
        """The regimen this evaluation computed for an allowed option (recommended or alternative)."""
        return next((r for r in [self.recommendation, *self.alternatives] if r is not None and r.agent == option_id), None)

    @property
    def rule_ids(self) -> list[str]:
        return [r.rule_id for r in self.rules_fired]


def entry_flags(entries: dict[str, list[DrugMatch]]) -> list[Flag]:
    """For each list (label -> matches): what the formulary did not recognise (not trusted: check it by
    hand) and what it read through a spelling guess (confirm)."""
    out = []
    for label, matches in entries.items():
        for m in matches:
            if not m.recognized:
                unknown = f" ({', '.join(repr(w) for w in m.unknown_words)} unknown)" if m.unknown_words else ""
                out.append(Flag(code="UNRECOGNIZED-ENTRY", message=(
                    f"{label.capitalize()} {m.text!r} is not recognised by the formulary{unknown}: what is not recognised "
                    "is not trusted, so check it by hand for interactions and cross-reactivity.")))
            for fix in m.spelling_corrections:
                out.append(Flag(code="SPELLING-ASSUMED", message=f"{label.capitalize()} {m.text!r} read as a spelling variant ({fix}): confirm."))
    return out


def same_drug_flags(meds: list[DrugMatch], allergies: list[DrugMatch]) -> list[Flag]:
    """A medication the patient takes that an allergy entry names (the same ingredient, or a class the allergy
    names): one of the two answers may be wrong, or the "allergy" a side effect."""
    out = []
    for a in allergies:
        if not a.recognized or not (a.ingredients or a.named_classes):
            continue
        for m in meds:
            shared = sorted(set(a.ingredients) & set(m.ingredients)) or sorted(set(a.named_classes) & set(m.classes))
            if shared:
                out.append(Flag(code="MED-ALLERGY-CONFLICT", message=(
                    f"Allergy {a.text!r} and medication {m.text!r} name the same drug ({', '.join(s.replace('_', ' ') for s in shared)}): "
                    "confirm whether the patient still takes it and what the reaction was.")))
    return out
