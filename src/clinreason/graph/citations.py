"""Citation check: every [n] resolves to a retrieved chunk that supports its sentence.

A citation is dropped when it does not resolve to a retrieved chunk, or when
the sentence names drugs, classes or thresholds and the cited chunk names none
of them. Both kinds of drop are counted for the report and the audit record.
"""

from __future__ import annotations

from pydantic import BaseModel

from clinreason.agents.models import Claim
from clinreason.knowledge.chunking import Chunk
from clinreason.knowledge.support import supports


class CitationStats(BaseModel):
    cited: int = 0  # citations kept
    unresolved: int = 0  # not a retrieved chunk
    unsupported: int = 0  # retrieved, but does not mention what the sentence names


def check_claim(claim: Claim, passages: dict[str, Chunk], stats: CitationStats) -> Claim:
    kept = []
    for cid in dict.fromkeys(claim.citations):
        chunk = passages.get(cid)
        if chunk is None:
            stats.unresolved += 1
        elif not supports(claim.text, chunk):
            stats.unsupported += 1
        else:
            kept.append(cid)
            stats.cited += 1
    return claim.model_copy(update={"citations": kept})
