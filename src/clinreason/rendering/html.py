"""Markdown -> one self-contained HTML5 file (inline CSS; no fonts, scripts or images fetched).

The Markdown is parsed by markdown-it-py (CommonMark, plus tables and strikethrough) with raw
HTML disabled: any HTML in the text is shown as text, escaped exactly once. The report's writer
escapes `<` and `>` as entities; CommonMark decodes those in running text, and this renderer
decodes them inside code spans and blocks too, so a reader never sees `&lt;` or `&amp;gt;`.
Images are not fetched (their description is shown instead): the file needs nothing else to
display or print.

The same HTML is the source of the PDF (pdf.py): the page rules below put the title, the
assessment id and status, a DRAFT marker and "page N of M" on every printed page.
"""

from __future__ import annotations

import html as _html
import re
from collections.abc import Sequence
from functools import lru_cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from markdown_it import MarkdownIt

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
DRAFT_LABEL = "DRAFT: not signed"


@lru_cache(maxsize=1)
def _parser() -> MarkdownIt:
    # Imported here: `show --report` and the API's Markdown routes render no HTML (15 ms measured).
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False, "breaks": True})
    md.enable(["table", "strikethrough"])

    def code_inline(renderer: Any, tokens: Sequence[Any], idx: int, options: Any, env: Any) -> str:
        return f"<code>{_html.escape(_html.unescape(tokens[idx].content), quote=False)}</code>"

    def code_block(renderer: Any, tokens: Sequence[Any], idx: int, options: Any, env: Any) -> str:
        return f"<pre><code>{_html.escape(_html.unescape(tokens[idx].content), quote=False)}</code></pre>\n"

    def image(renderer: Any, tokens: Sequence[Any], idx: int, options: Any, env: Any) -> str:
        # Nothing is fetched: the image's description stands in for it.
        alt = "".join(t.content for t in tokens[idx].children or []) or "image"
        return f'<span class="image">[{_html.escape(alt, quote=False)}]</span>'

    md.add_render_rule("code_inline", code_inline)
    md.add_render_rule("code_block", code_block)
    md.add_render_rule("fence", code_block)
    md.add_render_rule("image", image)
    return md


def markdown_to_fragment(markdown: str) -> str:
    """The body HTML of a Markdown text (no document around it)."""
    return _parser().render(_CONTROL.sub(" ", markdown))


def _css_string(text: str) -> str:
    """`text` as a CSS string literal (for `content:` in the page rules): quotes and backslashes
    escaped, and `<` `>` as CSS escapes, so nothing in it can close the <style> element."""
    text = _CONTROL.sub(" ", text).replace("\n", " ").replace("\\", "\\\\").replace('"', '\\"')
    return '"' + text.replace("<", "\\3c ").replace(">", "\\3e ") + '"'


def _attr(text: str) -> str:
    return _html.escape(_CONTROL.sub(" ", text), quote=True)


CSS = """
:root { color-scheme: light; }  /* light on every screen, as on paper */
html { font-size: 16px; }
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", "Liberation Sans", Arial, sans-serif;
       line-height: 1.45; color: #1a1a1a; background: #fff; max-width: 52rem; margin: 0 auto; padding: 1.5rem 1.25rem 3rem; }
h1 { font-size: 1.6rem; margin: 0 0 .6rem; line-height: 1.2; }
h2 { font-size: 1.2rem; margin: 1.6rem 0 .5rem; padding-bottom: .15rem; border-bottom: 1px solid #c9ced6; }
h3 { font-size: 1.05rem; margin: 1.2rem 0 .4rem; }
h4, h5, h6 { font-size: 1rem; margin: 1rem 0 .3rem; }
p { margin: .45rem 0; }
ul, ol { margin: .35rem 0 .6rem; padding-left: 1.4rem; }
li { margin: .15rem 0; }
li > ul, li > ol { margin: .15rem 0; }
strong { font-weight: 700; }
a { color: #0b4f9c; }
code { font-family: "DejaVu Sans Mono", ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: .86em;
       background: #f1f3f5; padding: 0 .2em; border-radius: 3px; }
pre { background: #f1f3f5; padding: .6rem .8rem; border-radius: 4px; white-space: pre-wrap; }
pre code { background: none; padding: 0; }
/* Long unbroken words (chunk ids, hashes, drug lists glued with slashes) wrap instead of overflowing. */
body, td, th, li, p, code { overflow-wrap: anywhere; word-wrap: break-word; }
table { border-collapse: collapse; width: 100%; margin: .6rem 0; font-size: .92em; }
th, td { border: 1px solid #c9ced6; padding: .3rem .45rem; text-align: left; vertical-align: top; }
th { background: #eef1f4; }
blockquote { margin: .6rem 0; padding: .1rem .9rem; border-left: 4px solid #c9ced6; color: #333; }
hr { border: 0; border-top: 1px solid #c9ced6; margin: 1.2rem 0; }
.draft { border: 2px solid #b3261e; color: #b3261e; font-weight: 700; padding: .35rem .6rem; margin: 0 0 1rem;
         border-radius: 4px; }
.image { color: #4a5260; font-style: italic; }
@media print {
  html { font-size: 9.5pt; }
  body { max-width: none; margin: 0; padding: 0; line-height: 1.35; font-family: "DejaVu Sans", "Liberation Sans", Arial, sans-serif; }
  h1 { font-size: 15pt; }
  h2 { font-size: 11.5pt; margin: 9pt 0 3pt; break-after: avoid; page-break-after: avoid; }
  h3 { font-size: 10pt; margin: 8pt 0 3pt; }
  p { margin: 3pt 0; }
  ul, ol { margin: 2pt 0 4pt; }
  li { margin: 1pt 0; }
  h3, h4 { break-after: avoid; page-break-after: avoid; }
  li, tr, .draft { break-inside: avoid; page-break-inside: avoid; }
  a { color: inherit; text-decoration: none; }
  code, pre { background: #f3f3f3; }
}
"""


def _page_css(title: str, assessment_id: str | None, status: str | None, draft: bool) -> str:
    left = " · ".join(x for x in (f"Assessment {assessment_id}" if assessment_id else "", status or "") if x)
    rules = [
        "@page { size: letter; margin: 16mm 16mm 18mm 16mm;",
        '  font-family: "DejaVu Sans", "Liberation Sans", Arial, sans-serif;',
        f"  @top-left {{ content: {_css_string(title)}; font-size: 8pt; color: #4a5260; }}",
        f"  @bottom-left {{ content: {_css_string(left)}; font-size: 8pt; color: #4a5260; }}",
        '  @bottom-right { content: "page " counter(page) " of " counter(pages); font-size: 8pt; color: #4a5260; }',
    ]
    if draft:
        rules.append(f"  @top-right {{ content: {_css_string(DRAFT_LABEL)}; font-size: 9pt; font-weight: bold; color: #b3261e; }}")
    rules.append("}")
    return "\n".join(rules)


def to_html(markdown: str, title: str, *, assessment_id: str | None = None, status: str | None = None, draft: bool = False,
            draft_banner: bool = True, created: str | None = None, generator: str | None = None) -> str:
    """One self-contained HTML5 document of `markdown`, print-friendly and readable on screen.

    `assessment_id` and `status` (plain words, e.g. "awaiting sign-off") go into the document's
    metadata and the printed pages' footer; `draft` adds a "DRAFT: not signed" marker at the top
    of every printed page, and (with `draft_banner`) above the text. `created` (ISO 8601) becomes
    the PDF creation date.
    """
    body = markdown_to_fragment(markdown)
    meta = [f'<meta name="description" content="{_attr(title + (f" (assessment {assessment_id})" if assessment_id else ""))}">']
    if assessment_id:
        meta.append(f'<meta name="keywords" content="{_attr(", ".join(x for x in (f"assessment {assessment_id}", status) if x))}">')
    if generator:
        meta.append(f'<meta name="generator" content="{_attr(generator)}">')
    if created and re.fullmatch(r"\d{4}-\d\d-\d\d(T\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:\d\d)?)?", created):
        meta.append(f'<meta name="dcterms.created" content="{_attr(created)}">')
    banner = f'<p class="draft">{DRAFT_LABEL}: awaiting prescriber sign-off. Nothing in it is a prescription until a prescriber signs.</p>\n' \
        if draft and draft_banner else ""
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{_html.escape(_CONTROL.sub(' ', title), quote=False)}</title>\n"
        + "\n".join(meta) + "\n"
        f"<style>{CSS}\n{_page_css(title, assessment_id, status, draft)}\n</style>\n"
        "</head>\n<body>\n<main>\n"
        f"{banner}{body}"
        "</main>\n</body>\n</html>\n"
    )
