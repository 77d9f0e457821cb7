"""The corpus: front matter, stable chunk ids, and one source of truth with the rules."""

from __future__ import annotations

import re

from clinreason.knowledge.chunking import all_chunks, chunk_document, kb_version
from patients import uti_formulary, uti_spec

from clinreason.knowledge.corpus import KINDS, all_documents, rule_chunk_id
from clinreason.protocols.uti_cystitis.documents import render_monograph

KB = "uti-cystitis/CA-ON/"  # chunk ids are scoped to their knowledge base (protocol, profile)


def chunks_by_id():
    return {c.id: c for c in all_chunks()}


def test_documents_cover_the_required_kinds_and_topics():
    docs = {d.id: d for d in all_documents()}
    assert {d.kind for d in docs.values()} == set(KINDS)
    for needed in ("rules-ca-on", "policy-stewardship", "policy-referral", "policy-signoff", "policy-counselling",
                   "monograph-nitrofurantoin", "monograph-tmp-smx", "monograph-trimethoprim", "monograph-fosfomycin",
                   "guideline-idsa-2011", "guideline-nice-ng109", "guideline-beers"):
        assert needed in docs
    for d in docs.values():
        assert d.title and d.source and d.version and d.jurisdiction
        assert re.search(r"(19|20)\d\d", d.source), f"{d.id}: source must name a year"


def test_chunk_ids_are_doc_hash_slug():
    for c in all_chunks():
        assert (c.protocol, c.profile) == ("uti-cystitis", "CA-ON") and c.id == KB + c.local_id
        doc, _, slug = c.local_id.partition("#")
        assert doc == c.doc_id and re.fullmatch(r"[a-z0-9-]+", slug)
        assert len(c.content_hash) == 16


def test_every_protocol_rule_has_its_own_citable_chunk():
    chunks = chunks_by_id()
    profile = uti_spec().profile("CA-ON")
    for rule in uti_spec().rules.values():
        chunk = chunks[rule_chunk_id(rule.id)]
        assert rule.text.format(**profile.params) in chunk.text
        assert rule.id in chunk.text


def test_renal_rule_chunk_states_the_profile_threshold():
    text = chunks_by_id()[KB + "rules-ca-on#ex-renal"].text
    assert "30 mL/min" in text
    assert "30 mL/min" in chunks_by_id()[KB + "monograph-nitrofurantoin#renal-function"].text


def test_monograph_interaction_passages_come_from_the_interaction_rules():
    chunks = chunks_by_id()
    formulary = uti_formulary()
    for rule in formulary.interactions:
        for agent in rule.excludes:
            doc = f"monograph-{agent.replace('_', '-')}"
            matching = [c for c in chunks.values() if c.doc_id == doc and rule.rule_id in c.text]
            assert len(matching) == 1, (rule.rule_id, agent)
            assert rule.mechanism in matching[0].text


def test_monograph_text_follows_the_data():
    # Change the regimen in the profile: the rendered passage changes with it.
    profile = uti_spec().profile("CA-ON")
    changed = profile.model_copy(update={"regimens": {**profile.regimens, "fosfomycin": profile.regimens["fosfomycin"].model_copy(update={"dose": "6 g"})}})
    doc = render_monograph("fosfomycin", uti_formulary(), changed)
    assert "6 g" in doc.sections[0].body
    before = chunk_document(render_monograph("fosfomycin", uti_formulary(), profile))
    after = chunk_document(doc)
    assert before[0].content_hash != after[0].content_hash
    assert kb_version(before) != kb_version(after)


def test_kb_version_is_stable_for_the_same_chunks():
    assert kb_version(all_chunks()) == kb_version(list(reversed(all_chunks())))


def test_agent_tags_follow_the_text():
    chunks = chunks_by_id()
    assert chunks[KB + "rules-ca-on#ex-warfarin"].options == ("tmp_smx",)
    assert "tmp_smx" in chunks[KB + "guideline-beers#tmp-smx-with-warfarin-bleeding-risk"].options
    assert chunks[KB + "monograph-fosfomycin#age-limits"].options == ("fosfomycin",)
