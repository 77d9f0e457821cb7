"""FHIR narrative (XHTML) from the report's Markdown: the report split at its `## ` headings, each part
rendered by the report's own HTML renderer and checked against FHIR's narrative rules.

A narrative is an XHTML `<div>` with only the basic HTML elements FHIR allows (no script, style,
forms, head or body; no event attributes). The renderer has raw HTML off, so the only element it makes
that FHIR does not allow is strikethrough's `<s>`, kept as a styled span. Anything that still fails
the check is shown as preformatted text: a narrative is never dropped and never unsafe.
"""

from __future__ import annotations

import html
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from functools import lru_cache

from markdown_it import MarkdownIt

from clinreason.rendering.html import markdown_to_fragment

XHTML = "http://www.w3.org/1999/xhtml"
# FHIR R4 Narrative, constraint txt-1: the basic HTML elements a narrative may use.
ALLOWED = frozenset({
    "a", "abbr", "acronym", "b", "big", "blockquote", "br", "caption", "cite", "code", "col", "colgroup", "dd", "dfn", "div", "dl",
    "dt", "em", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "li", "ol", "p", "pre", "q", "samp", "small", "span", "strong",
    "sub", "sup", "table", "tbody", "td", "tfoot", "th", "thead", "tr", "tt", "ul", "var"})
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")  # not allowed in XML 1.0
_UNSAFE_URL = re.compile(r"^\s*(javascript|vbscript|data):", re.IGNORECASE)


@dataclass(frozen=True)
class Section:
    title: str  # the heading's text, Markdown marks removed
    div: str | None  # None: nothing under the heading


@lru_cache(maxsize=2)
def _parser(inline: bool) -> MarkdownIt:
    # Block rules alone find the headings (a `## ` inside a code block is not one); inline reads a heading's words.
    md = MarkdownIt("commonmark").enable(["table", "strikethrough"])
    return md if inline else md.disable("inline")


def problems(div: str) -> list[str]:
    """What makes `div` an invalid FHIR narrative (empty: valid)."""
    try:
        root = ET.fromstring(div)
    except ET.ParseError as exc:
        return [f"not well-formed XML: {exc}"]
    out = [] if root.tag == f"{{{XHTML}}}div" else [f"root is {root.tag}, not an XHTML div"]
    for el in root.iter():
        ns, _, name = el.tag.rpartition("}")
        if ns != "{" + XHTML or name not in ALLOWED:
            out.append(f"element {el.tag} not allowed")
        for attr, value in el.attrib.items():
            if attr.startswith("{") or attr.lower().startswith("on"):
                out.append(f"attribute {attr} on {name} not allowed")
            elif attr in ("href", "src") and _UNSAFE_URL.match(value):
                out.append(f"{attr} {value[:40]!r} not allowed")
    if not "".join(root.itertext()).strip() and root.find(f".//{{{XHTML}}}img") is None:
        out.append("no content")  # txt-2: a narrative has some non-whitespace content
    return out


def wrap(fragment: str) -> str:
    return f'<div xmlns="{XHTML}">{fragment}</div>'


def plain(*paragraphs: str) -> str:
    """A narrative of plain-text paragraphs."""
    return wrap("".join(f"<p>{html.escape(_CONTROL.sub(' ', p), quote=False)}</p>" for p in paragraphs if p.strip()))


def from_markdown(markdown: str) -> str | None:
    """The narrative of a Markdown text; None when it has no content."""
    if not markdown.strip():
        return None
    fragment = markdown_to_fragment(markdown).replace("<s>", '<span style="text-decoration: line-through">').replace("</s>", "</span>")
    div = wrap(fragment.strip())
    if not problems(div):
        return div
    fallback = wrap(f"<pre>{html.escape(_CONTROL.sub(' ', markdown.strip()), quote=False)}</pre>")
    return fallback if not problems(fallback) else None


def split(markdown: str) -> tuple[str | None, list[Section]]:
    """(the narrative before the first `## ` heading, the sections under each `## ` heading in order)."""
    text = markdown.replace("\r\n", "\n").replace("\r", "\n")
    lines = text.split("\n")
    tokens = _parser(inline=False).parse(text)
    heads = [(t.map, tokens[i + 1]) for i, t in enumerate(tokens)
             if t.type == "heading_open" and t.tag == "h2" and t.level == 0 and t.map is not None]
    starts = [m[0] for m, _ in heads]
    preamble = from_markdown("\n".join(lines[:starts[0]] if starts else lines))
    sections = []
    for n, (span, inline) in enumerate(heads):
        end = starts[n + 1] if n + 1 < len(starts) else len(lines)
        words = _parser(inline=True).parseInline(inline.content)[0].children or []
        title = "".join(c.content for c in words if c.type in ("text", "code_inline")).strip()
        sections.append(Section(title=_CONTROL.sub(" ", title) or "Section", div=from_markdown("\n".join(lines[span[1]:end]))))
    return preamble, sections
