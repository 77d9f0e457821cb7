"""Text hygiene for every free-text input, before validation and matching.

A name can look right on screen and still defeat a whole-word match:
`lisino\u200bpril` (zero-width space), `war\u00adfarin` (soft hyphen), a
no-break space, full-width letters, or a Cyrillic `о` inside a Latin word.
`clean_text` folds what is only presentation (Unicode NFKC, invisible format
characters removed, every kind of space made one ASCII space) and
`mixed_script_words` finds what cannot be folded safely: a word whose letters
come from more than one script. Callers reject such a word with a field
error instead of guessing which name was meant.

Script lookup uses the `regex` package (Unicode script properties, which the
standard library does not expose).

`neutralise` is for text nobody vouches for (what an LLM agent writes): the
same folding, plus markup removed and the length capped, before it is stored.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

import regex

# Invisible characters NFKC keeps that are not format (Cf) characters: the
# combining grapheme joiner, variation selectors and the Hangul fillers, which
# render as nothing inside a Latin word.
_INVISIBLE_EXTRA = frozenset("\u034f\u115f\u1160\u3164\uffa0" + "".join(chr(c) for c in range(0xFE00, 0xFE10)))
_SPACES = re.compile(r"\s+")
# The micro sign in a unit (µg, µL) becomes "mc" (ISMP spells it mcg), so a
# dose such as "250µg" is not read as a Greek letter inside a Latin word.
_MICRO = re.compile(r"(?<![^\W\d_])[\u00b5\u03bc](?=[A-Za-z])")
_WORD = regex.compile(r"[\p{L}\p{M}]+")
# Scripts that write one language together and mix inside a word by design.
_CJK = frozenset({"Han", "Hiragana", "Katakana", "Hangul", "Bopomofo"})
_SCRIPTS = (
    "Latin", "Greek", "Cyrillic", "Armenian", "Georgian", "Hebrew", "Arabic", "Syriac", "Thaana", "Devanagari",
    "Bengali", "Gurmukhi", "Gujarati", "Oriya", "Tamil", "Telugu", "Kannada", "Malayalam", "Sinhala", "Thai", "Lao",
    "Tibetan", "Myanmar", "Khmer", "Mongolian", "Ethiopic", "Cherokee", "Canadian_Aboriginal", "Ogham", "Runic",
    "Coptic", "Tifinagh", "Yi", "Vai", "Nko", *sorted(_CJK),
)
_SCRIPT_PATTERNS = tuple((name, regex.compile(rf"\p{{Script={name}}}")) for name in ("Common", "Inherited", *_SCRIPTS))


# Format characters (Cf), control characters that are not whitespace, and the extras above.
_DROP = regex.compile(r"[\p{Cf}" + "".join(sorted(_INVISIBLE_EXTRA)) + r"]|(?!\s)\p{Cc}")


def clean_text(text: str) -> str:
    """NFKC, invisible characters removed, runs of any space folded to one ASCII space, trimmed."""
    if text.isascii() and text.isprintable() and "  " not in text:
        return text.strip()
    text = _DROP.sub("", unicodedata.normalize("NFKC", text))
    text = _MICRO.sub("mc", text)
    return _SPACES.sub(" ", text).strip()


@lru_cache(maxsize=4096)
def _script(ch: str) -> str:
    return next((name for name, pattern in _SCRIPT_PATTERNS if pattern.match(ch)), "Other")


def word_scripts(word: str) -> set[str]:
    """Scripts of the letters in a word (combining marks and digits belong to none)."""
    return {_script(ch) for ch in word if unicodedata.category(ch).startswith("L")} - {"Common", "Inherited"}


def mixed_script_words(text: str) -> list[str]:
    """Words whose letters come from more than one script (CJK scripts count as one)."""
    if text.isascii():
        return []
    out = []
    for word in _WORD.findall(text):
        scripts = word_scripts(word)
        if len(scripts - _CJK) + (1 if scripts & _CJK else 0) > 1:
            out.append(word)
    return out


def fold_for_matching(text: str) -> str:
    """Lower case without accents: "Triméthoprime" and "trimethoprime" match the same term."""
    if text.isascii():
        return text.lower()  # the same as casefold for ASCII, and nothing to decompose
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def mixed_script_message(text: str) -> str | None:
    """The field-error message for text with a mixed-script word, or None when it has none."""
    mixed = mixed_script_words(text)
    if not mixed:
        return None
    return (f"{text!r} mixes letters of different scripts in {', '.join(repr(w) for w in mixed)}: a look-alike "
            "letter (such as a Cyrillic 'о' in a Latin name) defeats drug matching; retype it")


# Elements whose content is code, not prose: dropped with their content (to the end when unclosed).
_ACTIVE_ELEMENT = regex.compile(r"<\s*(script|style|iframe|object|embed|template|svg|math|noscript)\b.*?(?:<\s*/\s*\1\s*>|$)",
                                regex.IGNORECASE | regex.DOTALL)
# Any other tag, comment or declaration. "eGFR < 30" is not a tag: "<" must touch a letter, "/", "!" or "?".
_TAG = regex.compile(r"<\s*/?\s*[A-Za-z!?][^<>]*>")
_SURROGATE = regex.compile(r"\p{Cs}")  # lone surrogates cannot be encoded as UTF-8 JSON: a stored record would fail


_SPACE_BEFORE_PUNCT = regex.compile(r" +(?=[.,;:!?])")


def strip_markup(text: str) -> str:
    """HTML removed, repeated until nothing changes, so "<scr<script>x</script>ipt>" cannot reassemble a tag.
    A tag becomes a space (words either side stay apart), none before punctuation ("the <b>board</b>.")."""
    original = text
    while (stripped := _TAG.sub(" ", _ACTIVE_ELEMENT.sub(" ", text))) != text:
        text = stripped
    return text if text is original else _SPACE_BEFORE_PUNCT.sub("", text)


def neutralise(text: str, cap: int) -> str:
    """Untrusted text as it may be stored: bounded work on a huge input, invisible and control
    characters gone (clean_text), markup removed, at most `cap` characters (an ellipsis marks a cut)."""
    text = _SURROGATE.sub("", text[: cap * 8])
    text = clean_text(strip_markup(clean_text(text)))  # fold first: full-width "＜script＞" is "<script>" after NFKC
    return text if len(text) <= cap else text[: cap - 1].rstrip() + "\u2026"


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
MAX_LINE = 600  # characters of one rendered line of untrusted text (the agent boundary's claim cap too)


def report_line(text: str, limit: int = MAX_LINE) -> str:
    """Untrusted text -> one safe markdown line: no control characters, no HTML, no bracketed
    citation look-alikes or links, no heading marks, bounded length."""
    text = _CONTROL.sub(" ", text)
    text = re.sub(r"\s+", " ", text).strip()
    # Markup removed, not escaped: an entity such as "&gt;" would show as written in the Markdown and,
    # escaped again by an HTML renderer, in the HTML too. A "<" that could still open a tag is spaced off.
    text = re.sub(r"<(?=[A-Za-z/!?])", "< ", strip_markup(text))
    text = text.replace("[", "(").replace("]", ")")  # no forged [n] or links
    text = re.sub(r"^#+\s*", "", text)
    return text if len(text) <= limit else text[: limit - 1] + "…"
