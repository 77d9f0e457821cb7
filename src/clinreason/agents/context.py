"""The case as the agents see it: patient, protocol result and retrieved passages."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property

from clinreason.knowledge.chunking import Chunk
from clinreason.knowledge.corpus import monograph_doc_id, rule_chunk_id
from clinreason.knowledge.formulary import Formulary, load_formulary
from clinreason.protocols.patient import Patient
from clinreason.protocols.profile import Profile, load_profile
from clinreason.protocols.result import Exclusion, ProtocolResult


def monograph_chunk_for_rule(agent: str, rule_id: str, chunks: Mapping[str, Chunk]) -> str | None:
    """The agent's monograph section behind an exclusion rule (the chunk tagged with it), among `chunks`."""
    doc = monograph_doc_id(agent)
    return next((cid for cid, c in chunks.items() if c.doc_id == doc and rule_id in c.rules), None)


@dataclass
class CaseContext:
    patient: Patient
    protocol: ProtocolResult
    passages: dict[str, Chunk]  # retrieved chunks by id: the only citable evidence
    formulary: Formulary = field(default_factory=load_formulary)
    # Wall-clock time (time.time()) after which no LLM call is made for this assessment; None = no deadline.
    deadline: float | None = None

    @cached_property
    def profile(self) -> Profile:
        return load_profile(self.protocol.profile_id)

    def agent_name(self, agent: str) -> str:
        return self.formulary.agents[agent].name

    def cite(self, *chunk_ids: str) -> list[str]:
        """Only ids that were retrieved; a citation must resolve to a passage."""
        return [c for c in chunk_ids if c in self.passages]

    def rule_citation(self, rule_id: str) -> list[str]:
        return self.cite(rule_chunk_id(rule_id, self.protocol.profile_id))

    def monograph_section(self, agent: str, contains: str) -> list[str]:
        """Retrieved monograph sections of an agent whose id contains a slug fragment."""
        prefix = monograph_doc_id(agent) + "#"
        return [cid for cid in self.passages if cid.startswith(prefix) and contains in cid]

    def exclusion_citations(self, agent: str, ex: Exclusion) -> list[str]:
        """The policy rule chunk plus the agent's monograph section for that rule."""
        monograph = monograph_chunk_for_rule(agent, ex.rule_id, self.passages)
        return self.rule_citation(ex.rule_id) + ([monograph] if monograph else [])
