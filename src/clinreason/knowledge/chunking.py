"""Section chunks with stable, scoped ids, content hashes and a knowledge-base version."""

from __future__ import annotations

import hashlib
from functools import cache

from pydantic import BaseModel, ConfigDict

from clinreason.knowledge.corpus import Document, Scope, all_documents, all_scopes, default_scope, spec_of
from clinreason.protocols.spec import scoped_id


class Chunk(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str  # "protocol/profile/doc-id#section-slug"
    doc_id: str  # the document's id inside its knowledge base
    protocol: str
    profile: str
    title: str  # document title
    section: str  # section heading
    text: str
    source: str
    version: str
    jurisdiction: str
    kind: str
    options: tuple[str, ...]  # protocol options the chunk is about
    rules: tuple[str, ...] = ()  # protocol rule ids the chunk states or applies
    content_hash: str

    @property
    def local_id(self) -> str:
        """"doc-id#section-slug": the id inside its knowledge base."""
        return self.id.split("/", 2)[2]

    @property
    def scope(self) -> Scope:
        return self.protocol, self.profile

    @property
    def embed_text(self) -> str:
        """What both indexes see. The document title is left out: it is shared by
        every section of a document and drowned short rule passages (measured)."""
        return f"{self.section}. {self.text}"


def chunk_document(doc: Document, scope: Scope | None = None) -> list[Chunk]:
    protocol, profile = scope or default_scope()
    formulary = spec_of((protocol, profile)).formulary
    chunks = []
    for s in doc.sections:
        parts = (doc.id, s.heading, s.body, doc.source, doc.version, ",".join(s.rules))
        h = hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]
        chunks.append(
            Chunk(
                id=scoped_id(protocol, profile, f"{doc.id}#{s.slug}"), doc_id=doc.id, protocol=protocol, profile=profile,
                title=doc.title, section=s.heading, text=s.body, source=doc.source, version=doc.version,
                jurisdiction=doc.jurisdiction, kind=doc.kind,
                options=doc.options or formulary.options_named(f"{s.heading} {s.body}"), rules=s.rules, content_hash=h,
            )
        )
    return chunks


@cache
def all_chunks(scope: Scope | None = None) -> tuple[Chunk, ...]:
    """Every chunk of one knowledge base (default: the default protocol under its default profile)."""
    scope = scope or default_scope()
    chunks = [c for doc in all_documents(scope) for c in chunk_document(doc, scope)]
    ids = [c.id for c in chunks]
    if len(set(ids)) != len(ids):
        raise ValueError(f"{scope}: duplicate chunk ids")
    return tuple(chunks)


@cache
def every_chunk() -> tuple[Chunk, ...]:
    """The chunks of every knowledge base (ids are unique across them)."""
    return tuple(c for scope in all_scopes() for c in all_chunks(scope))


def kb_version(chunks: tuple[Chunk, ...] | list[Chunk]) -> str:
    """Hash over every chunk's id and content hash: changes when any passage changes."""
    digest = hashlib.sha256()
    for c in sorted(chunks, key=lambda c: c.id):
        digest.update(f"{c.id}\0{c.content_hash}\n".encode())
    return digest.hexdigest()[:12]


@cache
def current_kb_version(scope: Scope | None = None) -> str:
    """kb_version of the bundled corpus of one knowledge base, computed once per process."""
    return kb_version(all_chunks(scope or default_scope()))
