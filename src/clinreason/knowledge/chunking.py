"""Section chunks with stable ids, content hashes and a knowledge-base version."""

from __future__ import annotations

import hashlib
from functools import cache

from pydantic import BaseModel, ConfigDict

from clinreason.knowledge.corpus import Document, all_documents
from clinreason.knowledge.formulary import load_formulary


class Chunk(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str  # "doc-id#section-slug"
    doc_id: str
    title: str  # document title
    section: str  # section heading
    text: str
    source: str
    version: str
    jurisdiction: str
    kind: str
    agents: tuple[str, ...]  # protocol agents the chunk is about
    rules: tuple[str, ...] = ()  # protocol rule ids the chunk states or applies
    content_hash: str

    @property
    def embed_text(self) -> str:
        """What both indexes see. The document title is left out: it is shared by
        every section of a document and drowned short rule passages (measured)."""
        return f"{self.section}. {self.text}"


def _agents_mentioned(text: str, doc: Document) -> tuple[str, ...]:
    if doc.agents:
        return doc.agents
    return load_formulary().agents_named(text)


def chunk_document(doc: Document) -> list[Chunk]:
    chunks = []
    for s in doc.sections:
        parts = (doc.id, s.heading, s.body, doc.source, doc.version, ",".join(s.rules))
        h = hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]
        chunks.append(
            Chunk(
                id=f"{doc.id}#{s.slug}", doc_id=doc.id, title=doc.title, section=s.heading, text=s.body,
                source=doc.source, version=doc.version, jurisdiction=doc.jurisdiction, kind=doc.kind,
                agents=_agents_mentioned(f"{s.heading} {s.body}", doc), rules=s.rules, content_hash=h,
            )
        )
    return chunks


@cache
def all_chunks(profile_id: str = "CA-ON") -> tuple[Chunk, ...]:
    chunks = [c for doc in all_documents(profile_id) for c in chunk_document(doc)]
    ids = [c.id for c in chunks]
    if len(set(ids)) != len(ids):
        raise ValueError("duplicate chunk ids")
    return tuple(chunks)


def kb_version(chunks: tuple[Chunk, ...] | list[Chunk]) -> str:
    """Hash over every chunk's id and content hash: changes when any passage changes."""
    digest = hashlib.sha256()
    for c in sorted(chunks, key=lambda c: c.id):
        digest.update(f"{c.id}\0{c.content_hash}\n".encode())
    return digest.hexdigest()[:12]


@cache
def current_kb_version(profile_id: str = "CA-ON") -> str:
    """kb_version of the bundled corpus, computed once per process."""
    return kb_version(all_chunks(profile_id))
