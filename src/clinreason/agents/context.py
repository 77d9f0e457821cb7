"""The case as the agents see it: patient, protocol result, retrieved passages and the protocol's spec."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from clinreason.knowledge.chunking import Chunk
from clinreason.knowledge.corpus import Scope, monograph_doc_id
from clinreason.protocols.profile import Profile
from clinreason.protocols.result import Exclusion, ProtocolResult
from clinreason.protocols.spec import ProtocolSpec


def monograph_chunk_for_rule(option: str, rule_id: str, chunks: Mapping[str, Chunk], scope: Scope) -> str | None:
    """The option's monograph section behind an exclusion rule (the chunk tagged with it), among `chunks`."""
    doc = monograph_doc_id(option)
    return next((cid for cid, c in chunks.items() if c.doc_id == doc and c.scope == scope and rule_id in c.rules), None)


@dataclass
class CaseContext:
    patient: Any  # the protocol's input model
    protocol: ProtocolResult
    passages: dict[str, Chunk]  # retrieved chunks by id: the only citable evidence
    spec: ProtocolSpec
    # Wall-clock time (time.time()) after which no LLM call is made for this assessment; None = no deadline.
    deadline: float | None = None

    @property
    def formulary(self):  # type: ignore[no-untyped-def]
        return self.spec.formulary

    @cached_property
    def profile(self) -> Profile:
        return self.spec.profile(self.protocol.profile_id)

    @property
    def scope(self) -> Scope:
        return self.protocol.protocol_id, self.protocol.profile_id

    def option_name(self, option: str) -> str:
        return self.spec.option_name(option)

    def cite(self, *chunk_ids: str) -> list[str]:
        """Only ids that were retrieved; a citation must resolve to a passage."""
        return [c for c in chunk_ids if c in self.passages]

    def rule_citation(self, rule_id: str | None) -> list[str]:
        return self.cite(self.spec.rule_chunk_id(rule_id, self.protocol.profile_id)) if rule_id else []

    def choice_citation(self) -> list[str]:
        """The rule passages that state the choice of option (those of them the protocol fired first)."""
        fired = set(self.protocol.rule_ids)
        rules = [r for r in self.spec.agent_policy.choice_rules if r in fired] or list(self.spec.agent_policy.choice_rules[:1])
        return [c for r in rules for c in self.rule_citation(r)]

    def docs(self, prefixes: tuple[str, ...]) -> list[str]:
        """Retrieved passages whose id inside the knowledge base starts with one of the prefixes."""
        return [cid for cid, c in self.passages.items() if c.local_id.startswith(prefixes)]

    def monograph_section(self, option: str, contains: str) -> list[str]:
        """Retrieved monograph sections of an option whose id contains a slug fragment."""
        prefix = monograph_doc_id(option) + "#"
        return [cid for cid, c in self.passages.items() if c.local_id.startswith(prefix) and contains in c.local_id]

    def exclusion_citations(self, option: str, ex: Exclusion) -> list[str]:
        """The policy rule chunk plus the option's monograph section for that rule."""
        monograph = monograph_chunk_for_rule(option, ex.rule_id, self.passages, self.scope)
        return self.rule_citation(ex.rule_id) + ([monograph] if monograph else [])
