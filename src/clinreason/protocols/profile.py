"""Protocol profiles (jurisdiction parameters) and rule specs, as data.

Every number that is a jurisdiction choice lives in a profile file, never in
code. A protocol subclasses `Profile` with its own parameters and names them
for rule texts in `params`.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from functools import cache, cached_property
from importlib import resources
from typing import TypeVar

from pydantic import BaseModel, ConfigDict, Field

from clinreason.protocols.result import FollowUp, Regimen, RegimenSpec, RuleHit

T = TypeVar("T")


class Profile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    id: str
    version: str
    protocol: str
    title: str
    source: str
    locales: list[str] = Field(default_factory=list, description="locale_code values that select this profile (default: its id).")
    option_order: list[str]
    regimens: dict[str, RegimenSpec]
    follow_up: FollowUp

    @property
    def locale_codes(self) -> list[str]:
        return self.locales or [self.id]

    def regimen(self, option: str) -> Regimen:
        """The option's regimen (one frozen instance per option: every result that recommends it shares it)."""
        return self._memo("_regimens", self.regimens, lambda: {o: Regimen(agent=o, **spec.model_dump()) for o, spec in self.regimens.items()})[option]

    def rule_title(self, rule: RuleSpec) -> str:
        """A rule's title with this profile's numbers, formatted once per title."""
        titles: dict[str, str] = self._memo("_titles", self.params, dict)
        if rule.title not in titles:
            titles[rule.title] = rule.title.format(**self.params)
        return titles[rule.title]

    def _memo(self, name: str, source: object, build: Callable[[], T]) -> T:
        """A value derived from `source`, built once. Kept with the source it was built from, because
        `model_copy(update=...)` copies the instance's dict: a copy with new regimens or parameters
        must not serve the original's."""
        held = self.__dict__.get(name)
        if held is None or held[0] is not source:
            held = self.__dict__[name] = (source, build())
        return held[1]

    @cached_property
    def params(self) -> dict[str, str]:
        """Values that rule texts may reference as {placeholders}."""
        return {"option_order": ", ".join(self.option_order), **self.extra_params()}

    def extra_params(self) -> dict[str, str]:
        return {}


class RuleSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    id: str
    step: int
    title: str
    text: str
    source: str
    decision: str = ""  # the decision the rule gives, when it gives one
    # A referral this rule triggers is same day, whatever its decision's usual timeframe.
    same_day: bool = False


@cache
def load_rules(package: str) -> dict[str, RuleSpec]:
    """The rule catalogue (`rules.toml`) of a protocol package, parsed once per process."""
    raw = tomllib.loads(resources.files(package).joinpath("rules.toml").read_text("utf-8"))
    return {rid: RuleSpec(id=rid, **spec) for rid, spec in raw.items()}


def rule_hits(package: str, fired: list[tuple[str, str]], profile: Profile) -> list[RuleHit]:
    """(rule id, what made it apply) pairs as RuleHits, titled with this profile's numbers."""
    rules = load_rules(package)
    return [RuleHit(rule_id=rid, title=profile.rule_title(rules[rid]), detail=detail) for rid, detail in fired]
