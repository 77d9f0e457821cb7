"""The knowledge-base corpus: one knowledge base per (protocol, profile).

Each protocol provides its documents through its spec (authored markdown and
documents rendered from its rules, profile and formulary tables); this module
only collects them per scope and checks them.
"""

from __future__ import annotations

from functools import cache

from clinreason.protocols.documents import KINDS, Document, Section, monograph_doc_id, parse_markdown, slugify
from clinreason.protocols.registry import DEFAULT_PROTOCOL, get_spec, registry
from clinreason.protocols.spec import ProtocolSpec

Scope = tuple[str, str]  # (protocol id, profile id): one knowledge base

__all__ = ["KINDS", "Document", "Scope", "Section", "all_documents", "all_scopes", "default_scope", "monograph_doc_id",
           "parse_markdown", "rule_chunk_id", "scope_of", "slugify", "spec_of"]


def default_scope() -> Scope:
    spec = get_spec(DEFAULT_PROTOCOL)
    return spec.id, spec.default_profile.id


def all_scopes() -> list[Scope]:
    """Every knowledge base: each registered protocol under each of its profiles."""
    return [(spec.id, pid) for spec in registry().values() for pid in spec.profiles]


def scope_of(protocol: str | None = None, profile: str | None = None) -> Scope:
    """A scope from optional ids: the default protocol, and a protocol's default profile."""
    try:
        spec = get_spec(protocol or DEFAULT_PROTOCOL)
    except KeyError:
        raise KeyError(f"unknown protocol {protocol!r} (protocols: {', '.join(registry())})") from None
    pid = profile or spec.default_profile.id
    if pid not in spec.profiles:
        raise KeyError(f"protocol {spec.id} has no profile {pid!r} (profiles: {', '.join(spec.profiles)})")
    return spec.id, pid


def spec_of(scope: Scope) -> ProtocolSpec:
    return get_spec(scope[0])


def rule_chunk_id(rule_id: str, scope: Scope | None = None) -> str:
    """The chunk that states a protocol rule under a profile: the citation target for that rule."""
    protocol, profile = scope or default_scope()
    return get_spec(protocol).rule_chunk_id(rule_id, profile)


@cache
def all_documents(scope: Scope | None = None) -> tuple[Document, ...]:
    scope = scope or default_scope()
    spec = spec_of(scope)
    docs = spec.documents(spec.profile(scope[1]))
    ids = [d.id for d in docs]
    if len(set(ids)) != len(ids):
        raise ValueError(f"{scope}: duplicate document ids: {ids}")
    return tuple(docs)
