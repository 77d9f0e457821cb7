"""The protocol seam: what every protocol provides, and what the engine reads through it.

The engine (graph, agents, knowledge, api, cli, evaluation) never names a
condition, drug, rule id or jurisdiction: everything condition-specific comes
from a `ProtocolSpec`. A protocol is a package under `protocols/` that builds
one spec from its own data (rules, profiles, options, corpus, cues, wording)
and a small module (its input model and its pure `evaluate`).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from importlib import resources
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel

from clinreason.errors import FieldError
from clinreason.formulary import Formulary, build_formulary
from clinreason.protocols.fhir_map import FhirMapping
from clinreason.protocols.profile import Profile, RuleSpec, load_rules
from clinreason.protocols.result import OptionEvaluation, ProtocolResult, RuleHit

if TYPE_CHECKING:  # documents.py imports this module for its annotations
    from clinreason.protocols.documents import Document

PlanKind = Literal["treat", "refer", "none"]
Urgency = Literal["emergency_or_same_day", "within_24_48h", "routine", "none"]
URGENCY_RANK: dict[str, int] = {"none": 0, "routine": 1, "within_24_48h": 2, "emergency_or_same_day": 3}


@dataclass(frozen=True)
class DecisionSpec:
    """One row of a protocol's decision table."""

    value: str
    meaning: str
    # treat: the doctor-pharmacist loop runs; refer / none: the doctor writes a cited note.
    plan: PlanKind
    urgency: Urgency  # the usual timeframe; a fired rule marked same_day raises it
    advice: str = ""  # what to tell the patient, in the referral or no-treatment note
    advice_same_day: str = ""  # the advice when a same-day rule raised the urgency


@dataclass(frozen=True)
class Search:
    """One retrieval of the evidence plan: a hybrid search inside the assessment's knowledge base.

    Every text a plan embeds must come from a finite set, so `kb build` embeds them all and no
    assessment loads the model: a query may name one option or one fired rule, and a query over
    several fired rules is built with `over_rules`, whose dense vector is the mean of its one-rule
    `parts` (BM25 and rule links read the joined query)."""

    query: str
    filters: dict[str, Any]
    k: int
    parts: tuple[str, ...] = ()

    @classmethod
    def over_rules(cls, template: str, hits: Sequence[RuleHit], filters: dict[str, Any], k: int) -> Search:
        """`template` with `{titles}` the fired rules' titles joined by "; "; one part per rule."""
        titles = [h.title for h in hits]
        return cls(template.format(titles="; ".join(titles)), filters, k, tuple(template.format(titles=t) for t in titles))


@dataclass(frozen=True)
class Wording:
    """Report and note text that depends on the condition. `{profile}` is the profile id."""

    report_title: str  # "# ..." heading of the report
    condition: str  # what the protocol treats, for sentences such as "not one of the protocol's options for ..."
    no_treatment_label: str  # the plan line of a no-treatment decision
    rejected: str  # the plan line after a prescriber rejects
    avoid_heading: str  # heading of the options a physician should avoid
    review_checked: str  # what the pharmacist checked an approved option against
    follow_up: str  # "{reassess}" is the profile's follow-up text
    return_line: str  # when to come back at once (every report)
    warn: str  # the same, in the referral note's patient advice
    referral_docs: tuple[str, ...] = ()  # chunk-id prefixes (document ids) that back referral advice
    return_docs: tuple[str, ...] = ()  # chunk-id prefixes that back the return-at-once advice
    follow_up_docs: tuple[str, ...] = ()  # chunk-id prefixes that back the follow-up line
    # The warning of a same-day referral: not "go at once" to a patient already told "today".
    warn_same_day: str = "If they cannot be seen today, or feel worse while waiting, they go to an emergency department at once."
    # Words for input fields whose names do not read well in a report ("relapse_within_4w"); others read as
    # their name with spaces. Keys are a field name or a dotted path.
    field_labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RetrievalHooks:
    """How a protocol reads a pharmacist's question beyond its cue words (all optional)."""

    # Rules a question's numbers decide (ages, lab values, episode counts), before and after the cues.
    link_numbers: Callable[[str, Any, Formulary, set[str]], None] | None = None
    link_after_cues: Callable[[str, Any, set[str]], None] | None = None
    expansion_terms: Callable[[str, Any], list[str]] | None = None  # extra query words from numbers
    named_sources: dict[str, re.Pattern[str]] = field(default_factory=dict)  # document id -> how a question names it


@dataclass(frozen=True)
class AgentPolicy:
    """What the offline doctor and pharmacist read from the protocol."""

    categories: dict[str, str]  # exclusion rule id -> concern category (default "interaction")
    criteria_rules: tuple[str, ...]  # rule-id prefixes of the findings that make the patient eligible
    choice_rules: tuple[str, ...]  # rules that state the choice of option (cited with the dose)
    no_option_rule: str | None  # cited when no option remains
    unverified_rule: str  # cited for an option an unrecognised entry leaves unverified
    review_sections: tuple[str, ...]  # monograph sections the pharmacist cites when approving
    treatment_sections: tuple[str, ...]  # monograph sections fetched for every allowed option


class ProtocolSpec:
    """The interface every protocol implements. Build one per protocol package."""

    def __init__(
        self,
        *,
        id: str,
        version: str,
        title: str,
        package: str,
        input_model: type[BaseModel],
        parse: Callable[[Any], BaseModel],
        check: Callable[[Any, Any], list[FieldError]] | None = None,
        evaluate: Callable[[Any, Any, Formulary], ProtocolResult],
        decisions: Sequence[DecisionSpec],
        profile_model: type[Profile],
        render_documents: Callable[[ProtocolSpec, Any], list[Document]],
        evidence_searches: Callable[[ProtocolSpec, ProtocolResult], list[Search]],
        patient_summary: Callable[[Any], list[str]],
        wording: Wording,
        agent_policy: AgentPolicy,
        prompts: dict[str, str],
        concern_categories: tuple[str, ...],
        retrieval: RetrievalHooks | None = None,
        legacy_plan_actions: dict[str, str] | None = None,
        legacy_documents: dict[str, str] | None = None,
    ):
        self.id = id
        self.version = version
        self.title = title
        self.package = package
        self.input_model = input_model
        self.parse = parse
        self.check = check or (lambda patient, profile: [])  # what the profile's numbers require of the input
        self._evaluate = evaluate
        self.decisions = {d.value: d for d in decisions}
        self.profile_model = profile_model
        self._render_documents = render_documents
        self._evidence_searches = evidence_searches
        self.patient_summary = patient_summary
        self.wording = wording
        self.agent_policy = agent_policy
        self.prompts = prompts
        self.concern_categories = concern_categories
        self.retrieval = retrieval or RetrievalHooks()
        # Names in records stored before protocols were plug-ins, read as today's: plan actions
        # (old -> new), and document ids of unscoped chunk ids (old -> new, in the default profile).
        self.legacy_plan_actions = legacy_plan_actions or {}
        self.legacy_documents = legacy_documents or {}

    # --- data files of the package -------------------------------------------------
    def read_text(self, *parts: str) -> str:
        return resources.files(self.package).joinpath(*parts).read_text("utf-8")

    def read_toml(self, *parts: str) -> dict[str, Any]:
        return tomllib.loads(self.read_text(*parts))

    def has_file(self, *parts: str) -> bool:
        return resources.files(self.package).joinpath(*parts).is_file()

    def files(self, *parts: str) -> list[Any]:
        """Entries of a folder of the package, sorted by name (none when it does not exist)."""
        folder = resources.files(self.package).joinpath(*parts)
        return sorted(folder.iterdir(), key=lambda p: p.name) if folder.is_dir() else []

    # --- profiles and rules ----------------------------------------------------------
    @cached_property
    def profiles(self) -> dict[str, Profile]:
        out: dict[str, Profile] = {}
        for entry in self.files("profiles"):
            if entry.name.endswith(".toml"):
                profile = self.profile_model.model_validate(tomllib.loads(entry.read_text("utf-8")))
                if profile.protocol != self.id:
                    raise ValueError(f"{entry.name}: profile of {profile.protocol!r}, not {self.id!r}")
                missing = [o for o in profile.option_order if o not in profile.regimens]
                if missing:
                    raise ValueError(f"profile {profile.id}: no regimen for {missing}")
                out[profile.id] = profile
        return out

    @cached_property
    def fhir(self) -> FhirMapping:
        """What coded FHIR resources settle which input field (`fhir.toml`; none: the questionnaire asks everything)."""
        return FhirMapping.model_validate(self.read_toml("fhir.toml") if self.has_file("fhir.toml") else {})

    @cached_property
    def locales(self) -> dict[str, str]:
        """locale_code -> profile id."""
        return {loc: p.id for p in self.profiles.values() for loc in p.locale_codes}

    @property
    def default_profile(self) -> Profile:
        """The first profile by id: the knowledge base a search without a profile reads."""
        return self.profiles[min(self.profiles)]

    def profile(self, profile_id: str) -> Profile:
        return self.profiles[profile_id]

    def profile_for_locale(self, locale_code: str) -> Profile | None:
        pid = self.locales.get(locale_code)
        return self.profiles[pid] if pid else None

    @property
    def rules(self) -> dict[str, RuleSpec]:
        return load_rules(self.package)

    def rule_title(self, rule_id: str, profile: Profile) -> str:
        return profile.rule_title(self.rules[rule_id])

    # --- formulary tables --------------------------------------------------------------
    @cached_property
    def formulary(self) -> Formulary:
        """The shared drug data plus this protocol's options and interaction rules."""
        raw = [self.read_text(name) if self.has_file(name) else "" for name in ("options.toml", "interactions.toml", "cautions.toml")]
        options, interactions, cautions = (tomllib.loads(r) if r else {} for r in raw)
        # The version hashes exactly the tables there are, so a protocol without cautions keeps its version.
        return build_formulary(options, interactions, cautions, tables="\0".join(r for r in raw if r).encode())

    def option_name(self, option: str) -> str:
        return self.formulary.options[option].name

    # --- behaviour -----------------------------------------------------------------------
    def evaluate(self, patient: Any, profile: Profile) -> ProtocolResult:
        """The protocol's pure evaluation: the same input always gives the same result."""
        return self._evaluate(patient, profile, self.formulary)

    def decision(self, value: str) -> DecisionSpec:
        return self.decisions[value]

    def plan_kind(self, result: ProtocolResult) -> PlanKind:
        return self.decisions[result.decision].plan

    def documents(self, profile: Profile) -> list[Document]:
        """Every document of this protocol's knowledge base under `profile` (authored and rendered)."""
        return self._render_documents(self, profile)

    def evidence_searches(self, result: ProtocolResult) -> list[Search]:
        return self._evidence_searches(self, result)

    def possible_searches(self) -> list[tuple[str, Search]]:
        """Every search the evidence plan can issue, as (profile id, search), a search over several
        fired rules standing for its one-rule parts: the plan run for each profile, decision, single
        fired rule and recommended option. Finite, so `kb build` embeds every text the plan can
        search for (tests/knowledge/test_evidence_plan.py checks it covers generated patients)."""
        out: dict[tuple[str, str, str, int, tuple[str, ...]], tuple[str, Search]] = {}
        for profile in self.profiles.values():
            options = [OptionEvaluation(option=o, rank=rank) for rank, o in enumerate(profile.option_order, 1)]
            for decision in self.decisions:
                for rule_id in self.rules:
                    hit = RuleHit(rule_id=rule_id, title=self.rule_title(rule_id, profile), detail="")
                    for option in profile.option_order:
                        result = ProtocolResult(
                            protocol_id=self.id, protocol_version=self.version, profile_id=profile.id,
                            profile_version=profile.version, decision=decision, rules_fired=[hit], options=options,
                            recommendation=profile.regimen(option))
                        for s in self.evidence_searches(result):
                            out.setdefault((profile.id, s.query, repr(sorted(s.filters.items())), s.k, s.parts), (profile.id, s))
        return list(out.values())

    def rules_doc_id(self, profile_id: str) -> str:
        """The rendered rule-catalogue policy: one passage per rule, with that profile's numbers."""
        return f"rules-{profile_id.lower()}"

    def rule_chunk_id(self, rule_id: str, profile_id: str) -> str:
        """The chunk that states a rule under a profile: the citation target for that rule."""
        return scoped_id(self.id, profile_id, f"{self.rules_doc_id(profile_id)}#{rule_id.lower()}")

    def referral_urgency(self, result: ProtocolResult) -> Urgency:
        """How soon the patient must be seen: the decision's timeframe, or same day when a rule that
        fired says so (rules.toml `same_day`). Deterministic: an LLM note may raise it, never lower it."""
        base = self.decisions[result.decision].urgency
        if base == "within_24_48h" and any(self.rules[h.rule_id].same_day for h in result.rules_fired):
            return "emergency_or_same_day"
        return base

    def urgency_shortfall(self, urgency: str, result: ProtocolResult) -> Urgency | None:
        """The urgency the protocol requires when `urgency` is later than it, else None."""
        need = self.referral_urgency(result)
        return need if URGENCY_RANK.get(urgency, -1) < URGENCY_RANK[need] else None

    def summary(self) -> dict[str, Any]:
        """What `GET /v1/protocols` and `clinreason protocols` show."""
        return {
            "id": self.id,
            "version": self.version,
            "title": self.title,
            "profiles": [{"id": p.id, "version": p.version, "title": p.title, "source": p.source, "locale_codes": list(p.locale_codes),
                          "options": list(p.option_order)} for p in self.profiles.values()],
            "decisions": [{"value": d.value, "meaning": d.meaning, "plan": d.plan, "urgency": d.urgency} for d in self.decisions.values()],
            "input_schema": self.input_model.model_json_schema(by_alias=True),
        }


def scoped_id(protocol_id: str, profile_id: str, local_id: str) -> str:
    """`protocol/profile/doc#section`: chunk ids never collide across knowledge bases."""
    return f"{protocol_id}/{profile_id}/{local_id}"
