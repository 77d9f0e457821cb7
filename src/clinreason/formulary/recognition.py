"""Free-text recognition: which drugs, classes or non-drug allergens an entry names.

The policy is fail-safe: what is not recognised is not trusted. An entry is
recognised only when it names something and every word of it is accounted
for: a formulary term, a manufacturer prefix, a number, or a word that
`words.toml` says is not a drug (units, forms, frequencies, reactions ...).
One unknown word ("lisinopril + Xyzzy") leaves the entry unrecognised, and
the protocol treats that as a possible interacting drug.

Matching, in order, on accent-free lower-case words (letters and digits
split, so "ramipril5mg" is "ramipril 5 mg"):
0. two adjacent words that together are one drug name ("warf arin");
1. the longest formulary term starting at a word (drug, class or non-drug);
   a maker-only name ("hydro") only right after a manufacturer prefix;
2. a manufacturer prefix ("apo", "teva", from `makers.toml`), or a prefix
   or a form word glued to a name ("apohydro", "septrads");
3. a word of `words.toml`, or a word of one or two letters;
4. spelling tolerance: Damerau-Levenshtein distance (a transposition is one
   edit) to single-word *drug* terms only, never to a class word, so a
   product ("Triazide") can never be repaired into a class ("thiazide").
   Allowed edits grow with length: none below 5 letters, one at 5-8, two
   from 9. When the nearest terms name different
   products, nothing is guessed.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cached_property

import regex
from rapidfuzz import process
from rapidfuzz.distance import OSA

from clinreason.hygiene import clean_text, fold_for_matching

# Any letters, not only a-z: a word in another script must be seen (and then not recognised),
# never dropped as if it were punctuation.
_WORDS = regex.compile(r"\p{L}+|\d+")
_SHORT = 2  # words this short (units such as "mg", "q", "h") are never drug names here
_MIN_GLUED_REST = 4
_MIN_GLUED_PREFIX = 3  # "nu"+"toprol" would read a typo of Dutoprol as Nu-Toprol: two-letter prefixes only with a hyphen or space


def match_words(text: str) -> tuple[str, ...]:
    """The words recognition works on: clean, accent-free, lower case, letters and digits split."""
    return tuple(_WORDS.findall(fold_for_matching(clean_text(text))))


def max_edits(word: str) -> int:
    """Spelling tolerance for a word of this length (a transposition counts as one edit)."""
    n = len(word)
    return 0 if n < 5 else 1 if n <= 8 else 2


def _deletions(word: str, depth: int) -> set[str]:
    """The word and every string made from it by deleting up to `depth` (0 to 2) letters."""
    if depth > 2:
        raise ValueError("spelling tolerance is at most two edits")
    n = len(word)
    ones = [word[:i] + word[i + 1:] for i in range(n)] if depth else []
    if depth == 2:
        # each pair of positions once: from the word without letter i, delete a letter at i or later
        out = {w[:j] + w[j + 1:] for i, w in enumerate(ones) for j in range(i, n - 1)}
        out.update(ones)
    else:
        out = set(ones)
    out.add(word)
    return out


@dataclass(frozen=True)
class Term:
    words: tuple[str, ...]
    kind: str  # "drug" | "class" | "non_drug"
    target: str
    maker_only: bool = False


@dataclass
class Scan:
    """What one entry names, and what in it is not accounted for."""

    drugs: list[str] = field(default_factory=list)
    classes: list[str] = field(default_factory=list)
    non_drug: list[str] = field(default_factory=list)
    corrections: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)


class Recognizer:
    """Term index over the formulary data; `scan` is pure and its callers cache it."""

    def __init__(self, terms: Iterable[Term], prefixes: Iterable[str], known_words: Iterable[str],
                 nil: Iterable[str], glued_forms: Iterable[str], combination_words: Iterable[str],
                 same_product: Callable[[str, str], bool], guess_ok: Callable[[str], bool]):
        self.prefixes = frozenset(prefixes)
        self.known = frozenset(known_words)
        # Strength and release suffixes written onto a name ("SeptraDS"); only these, so a
        # longer word is never cut into a name plus an ordinary word ("lopresor" + "etc").
        self.glued_forms = frozenset(glued_forms)
        self.combination_words = frozenset(combination_words)  # always unknown outside a term
        self.nil = frozenset(match_words(p) for p in nil)
        self._same_product = same_product
        self._guess_ok = guess_ok
        self.index: dict[str, list[Term]] = defaultdict(list)
        seen: dict[tuple[str, ...], Term] = {}
        for term in terms:
            prior = seen.get(term.words)
            if prior is not None and (prior.kind, prior.target) != (term.kind, term.target):
                raise ValueError(f"formulary term {' '.join(term.words)!r} is ambiguous: {prior.target} / {term.target}")
            if prior is None or (prior.maker_only and not term.maker_only):
                seen[term.words] = term
        for term in seen.values():
            self.index[term.words[0]].append(term)
        # One-word drug terms by word, for the joined-word, glued and guessed lookups.
        self._single_drug = {w[0]: t for w, t in seen.items() if t.kind == "drug" and len(w) == 1}
        for bucket in self.index.values():
            bucket.sort(key=lambda t: -len(t.words))
        # Cheap refusals for the scan of every word of a passage: a word that is no proper prefix of a
        # one-word drug term cannot begin a name broken in two, and a glued prefix or form can only
        # have the lengths these have.
        self._split_heads = frozenset(w[:i] for w in self._single_drug for i in range(1, len(w)))
        self._prefix_cuts = tuple(sorted({len(p) for p in self.prefixes if len(p) >= _MIN_GLUED_PREFIX}))
        self._form_sizes = tuple(sorted({len(f) for f in self.glued_forms}, reverse=True))  # longest first: the earliest cut
        clash = sorted(self.prefixes & {w for w, b in self.index.items() if any(len(t.words) == 1 for t in b)})
        if clash:
            raise ValueError(f"manufacturer prefixes are also formulary terms: {clash}")
        # Spelling tolerance: single-word drug terms only (never classes). Two indexes find the
        # candidates of a word in a few dictionary lookups instead of a scan of every term (terms
        # with a letter removed for one edit, their halves for two: `_candidates`); OSA distance
        # then decides.
        self._fuzzy_target = {
            words[0]: term.target for words, term in seen.items()
            if term.kind == "drug" and len(words) == 1 and not term.maker_only and words[0].isalpha()
        }
        self._longest = max(map(len, self._fuzzy_target), default=0)
        # Words that may start a term, a split name or a prefixed name, or are never accounted for alone:
        # every other number, short word and annotation word is passed over at once by the scan.
        self._special = frozenset(self.index) | self._split_heads | self.prefixes | self.combination_words
        self._nil_heads = frozenset(phrase[0] for phrase in self.nil if phrase)
        # A word nearer to a class word than to any drug is not guessed ("thiazides").
        self._class_words = sorted(w[0] for w, t in seen.items() if t.kind == "class" and len(w) == 1)

    @cached_property
    def _deletion_index(self) -> dict[str, tuple[str, ...]]:
        """Every term with up to one letter removed: the candidates of a word allowed one edit. Built on
        the first misspelt word, not at load (most entries never need it); the API builds it at
        start-up (`warm`)."""
        index: dict[str, list[str]] = defaultdict(list)
        for word in self._fuzzy_target:
            for variant in _deletions(word, 1):
                index[variant].append(word)
        return {k: tuple(v) for k, v in index.items()}

    @cached_property
    def _half_index(self) -> dict[str, tuple[str, ...]]:
        """The candidates of a word allowed two edits (9 letters or more), by its halves.

        Cut the word w in two, A = w[:n//2] and B = the rest. A term within two edits of w (OSA) can be
        cut in two so that A is within one edit of its first piece or B within one edit of its last:
        two edits on either side of the cut leave one side with at most one; a transposition across
        the cut is a substitution on each side, and then the other edit, if any, is on one side only.
        So each term is filed under its first and last pieces of every length such a half can be
        one edit from (for every word length within two of the term's), each piece with up to one
        letter removed, '<' marking a first piece and '>' a last. The lookup then builds about 2 x 7
        keys instead of the 50 to 80 two-letter deletions of the word, and OSA distance decides."""
        index: dict[str, set[str]] = defaultdict(set)
        for term in self._fuzzy_target:
            m = len(term)
            if m < 7:
                continue  # a term within two edits of a word of 9 letters or more has 7 or more
            first: set[int] = set()
            last: set[int] = set()
            for n in range(max(9, m - 2), m + 3):  # the lengths of words allowed two edits that can be within two of it
                first.update(range(n // 2 - 1, n // 2 + 2))
                last.update(range(n - n // 2 - 1, n - n // 2 + 2))
            for size in first:
                for variant in _deletions(term[:size], 1):
                    index["<" + variant].add(term)
            for size in last:
                for variant in _deletions(term[m - size:], 1):
                    index[">" + variant].add(term)
        return {k: tuple(sorted(v)) for k, v in index.items()}

    def _candidates(self, word: str, limit: int) -> set[str]:
        """Terms that may be within `limit` edits of the word (a superset; OSA distance decides)."""
        if limit == 1:
            index = self._deletion_index
            # (the keys view intersects in C: nearly every variant of an unknown word is in no term)
            return {c for v in index.keys() & _deletions(word, 1) for c in index[v]}
        half, cut = self._half_index, len(word) // 2
        keys = {"<" + v for v in _deletions(word[:cut], 1)} | {">" + v for v in _deletions(word[cut:], 1)}
        return {c for k in half.keys() & keys for c in half[k]}

    def warm(self) -> None:
        """Build the lazy spelling indexes now (server start-up), so no request pays for them."""
        _ = self._deletion_index, self._half_index

    # --- pieces ------------------------------------------------------------------
    def _term_at(self, words: tuple[str, ...], i: int, after_prefix: bool) -> Term | None:
        for t in self.index.get(words[i], ()):
            if words[i : i + len(t.words)] == t.words and (after_prefix or not t.maker_only):
                return t
        return None

    def _split_word(self, words: tuple[str, ...], i: int) -> Term | None:
        """A drug name broken by a stray space ("warf arin", an NBSP inside "lisi nopril"): the two
        pieces joined are one drug term. Tried first, so "sulfa methoxazole" is not read as "sulfa"."""
        if i + 1 >= len(words) or words[i] not in self._split_heads or words[i].isdigit() or words[i + 1].isdigit():
            return None
        return self._single(words[i] + words[i + 1], maker_only_ok=False)

    def _single(self, word: str, maker_only_ok: bool = True) -> Term | None:
        term = self._single_drug.get(word)
        return None if term is None or (term.maker_only and not maker_only_ok) else term

    def _glued(self, word: str) -> Term | None:
        """A prefix or a form word written together with the name: "apohydro", "tevalisinopril", "septrads"."""
        n = len(word)
        for cut in self._prefix_cuts:  # cuts from _MIN_GLUED_PREFIX up, leaving _MIN_GLUED_REST letters
            if cut > n - _MIN_GLUED_REST:
                break
            if word[:cut] in self.prefixes and (term := self._single(word[cut:])):
                return term
        for size in self._form_sizes:  # cuts from _MIN_GLUED_REST up, leaving a form of two letters or more
            cut = n - size
            if _MIN_GLUED_REST <= cut < n - 1 and word[cut:] in self.glued_forms and (term := self._single(word[:cut], maker_only_ok=False)):
                return term
        return None

    def fuzzy(self, word: str) -> str | None:
        """The drug term a misspelt word stands for, or None when none is near or the nearest disagree."""
        limit = max_edits(word)
        if limit == 0 or not word.isascii() or len(word) > self._longest + limit:
            return None  # a long word costs cubic time to expand and is no name anyway
        candidates = self._candidates(word, limit)
        hits = [(c, d) for c in sorted(candidates) if (d := OSA.distance(word, c, score_cutoff=limit)) <= limit]
        best_d = min((d for _, d in hits), default=None)
        best = [cand for cand, d in hits if d == best_d]
        if not best:
            return None
        if best_d > 1 and process.extractOne(word, self._class_words, scorer=OSA.distance, score_cutoff=best_d - 1) is not None:
            return None  # nearer to a class word: "thiazides" (1 from thiazide) is not Triazide (2)
        first = self._fuzzy_target[best[0]]
        if all(self._same_product(first, self._fuzzy_target[c]) for c in best[1:]):
            return best[0]
        return None  # two different products equally near: do not guess

    # --- the scan -----------------------------------------------------------------------
    def scan(self, text: str, tolerant: bool = True, allergy: bool = False) -> Scan:
        """`tolerant`: apply spelling tolerance (patient entries). Prose (questions, passages,
        agent sentences) is scanned exactly: its misspellings are spelling.py's job.
        `allergy`: non-drug allergens (latex, peanuts) count only in an allergy entry; in a
        medication line "with food" names nothing."""
        words = match_words(text)
        out = Scan()
        # (a nil statement's first word is one of a few, so most entries need no tuple of their letters)
        if not words or words[0].isdigit() or words[0] in self._nil_heads:
            letters = tuple([w for w in words if not w.isdigit()])
            if letters in self.nil:
                out.non_drug.append("none")
                return out
        index, split_heads, prefixes, known, special = self.index, self._split_heads, self.prefixes, self.known, self._special
        found = {"drug": out.drugs, "class": out.classes, "non_drug": out.non_drug}
        i, n, after_prefix = 0, len(words), False
        while i < n:
            w = words[i]
            if w not in special and w.isascii() and (w in known or w.isdigit() or len(w) <= _SHORT):
                # A number, a unit or an annotation word that begins nothing: accounted for, and no
                # prefix (the steps below reach the same answer for it, by a longer way).
                after_prefix = False
                i += 1
                continue
            # (the checks of _split_word and _term_at that refuse most words, made here first: a
            # passage has thousands of words and nearly none is a name)
            term = self._split_word(words, i) if w in split_heads else None
            advance = 2
            if term is None:
                term = self._term_at(words, i, after_prefix) if w in index else None
                if term is not None and term.kind == "non_drug" and not allergy:
                    term = None
                advance = len(term.words) if term else 1
            if term is None and w.isascii() and not w.isdigit() and w not in prefixes and w not in known and len(w) > _SHORT:
                term = self._glued(w)
                if term is None and tolerant and (fixed := self.fuzzy(w)) is not None:
                    guess = self._single_drug[fixed]
                    if self._guess_ok(guess.target):
                        term = guess
                        out.corrections.append(f"{w} -> {fixed}")
            if term is not None:
                found[term.kind].append(term.target)
                i += advance
                after_prefix = False
                continue
            after_prefix = w in prefixes
            ignorable = w.isdigit() or after_prefix or w in known or len(w) <= _SHORT
            if not w.isascii() or w in self.combination_words or not ignorable:
                out.unknown.append(w)  # a word in another script is never a name we know
            i += 1
        return out
