"""Markdown -> one self-contained HTML file: escaped exactly once, nothing fetched, print rules."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from clinreason.protocols.registry import get_spec
from clinreason.rendering import DRAFT_LABEL, HTML, MARKDOWN, report_document, to_html
from clinreason.rendering.notification import text

# What would make a browser fetch something, or run something: in a tag, or in the style sheet.
TAG = re.compile(r"<[a-zA-Z][^>]*>")
EXTERNAL_TAG = re.compile(r"""^<(?:script|link|img|iframe|object|embed|video|audio|source)\b|\bsrc\s*=|href\s*=\s*["']?(?:https?:)?//""",
                          re.IGNORECASE)
EXTERNAL_CSS = re.compile(r"@import|url\(", re.IGNORECASE)
DOUBLE_ESCAPED = re.compile(r"&amp;(?:[a-z]+|#\d+);", re.IGNORECASE)


def external_references(html: str) -> list[str]:
    """Tags and style rules that would fetch or run something (empty: the file is self-contained)."""
    style = "".join(re.findall(r"<style>(.*?)</style>", html, re.DOTALL))
    return [t for t in TAG.findall(html) if EXTERNAL_TAG.search(t)] + EXTERNAL_CSS.findall(style)


def test_html_is_one_self_contained_file():
    html = to_html("# Title\n\n![chart](https://example.org/chart.png) [site](https://example.org)\n\n<img src=x onerror=alert(1)>\n",
                   "Title", assessment_id="abc123", status="final")
    assert html.startswith("<!DOCTYPE html>") and "<style>" in html and "</html>" in html
    assert external_references(html) == ['<a href="https://example.org">']  # a link to follow, not a resource to fetch
    assert "[chart]" in html  # an image is never fetched: its description stands in for it
    assert "&lt;img src=x onerror=alert(1)&gt;" in html  # raw HTML in the text is shown, not run


@pytest.mark.parametrize(("markdown", "shown"), [
    ("eGFR &lt; 30 -&gt; refer", "eGFR &lt; 30 -&gt; refer"),  # the report writer's entities: decoded once, escaped once
    ("a <b>bold</b> & c", "a &lt;b&gt;bold&lt;/b&gt; &amp; c"),  # raw HTML and ampersands: escaped once
    ("`x &lt; y`", "<code>x &lt; y</code>"),  # inside code too: never a visible &lt;
    ("```\nA &gt; B <i>\n```", "<pre><code>A &gt; B &lt;i&gt;\n</code></pre>"),
])
def test_text_is_escaped_exactly_once(markdown, shown):
    html = to_html(markdown, "t")
    assert shown in html
    assert not DOUBLE_ESCAPED.search(html), DOUBLE_ESCAPED.findall(html)


def test_markdown_structure_headings_lists_emphasis_tables():
    md = "# H1\n\n## H2\n\n- **bold** and _italic_\n- `code`\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n1. first\n2. second\n"
    html = to_html(md, "t")
    for tag in ("<h1>H1</h1>", "<h2>H2</h2>", "<strong>bold</strong>", "<em>italic</em>", "<code>code</code>", "<table>",
                "<td>1</td>", "<ol>", "<li>second</li>"):
        assert tag in html, tag


def test_lines_stay_lines():
    # The report writes one statement a line; a soft line break is kept as a line break.
    assert "Plan line<br />" in to_html("Plan line\nDecided by: agents", "t")


def test_page_rules_put_id_status_pages_and_draft_on_every_page():
    html = to_html("# r", 'A "quoted" \\ title', assessment_id="abc123", status="awaiting sign-off", draft=True)
    assert '"page " counter(page) " of " counter(pages)' in html
    assert '"Assessment abc123 · awaiting sign-off"' in html
    assert f'"{DRAFT_LABEL}"' in html and f'<p class="draft">{DRAFT_LABEL}' in html
    assert r'"A \"quoted\" \\ title"' in html  # a CSS string cannot be broken out of
    assert '<meta name="keywords" content="assessment abc123, awaiting sign-off">' in html
    final = to_html("# r", "t", assessment_id="abc123", status="final")
    assert DRAFT_LABEL not in final
    assert DRAFT_LABEL not in to_html("# r", "t", draft=True, draft_banner=False).split("</style>")[1]


def test_control_characters_and_metadata_are_safe():
    html = to_html("a\x00b\x1bc", 't"><script>x</script>', assessment_id='"><x', created="2026-01-01T00:00:00+00:00")
    assert "\x00" not in html and "\x1b" not in html and "<script" not in html
    assert '<meta name="dcterms.created" content="2026-01-01T00:00:00+00:00">' in html
    assert 'content="not a date"' not in to_html("x", "t", created="not a date")


def test_notification_text_shows_exactly_what_it_was_given():
    raw = "a*b*c _d_ [1] <http://x> `e` &amp; back\\slash"
    html = to_html(f"- {text(raw)}", "t")
    shown = re.search(r"<li>(.*)</li>", html).group(1)
    assert shown == "a*b*c _d_ [1] &lt;http://x&gt; `e` &amp;amp; back\\slash"


def test_weasyprint_stays_off_the_other_paths():
    # Rendering Markdown and HTML (and importing the API and the CLI) never imports WeasyPrint: it is slow to import.
    code = ("import sys, clinreason.rendering, clinreason.api.routers.assessments, clinreason.cli; "
            "clinreason.rendering.to_html('# x', 'x'); print('weasyprint' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


def test_real_report_html(assessed):
    for name, (a, _) in assessed.items():
        doc = report_document(a)
        html = doc.render(HTML).decode("utf-8")
        assert not external_references(html), (name, external_references(html))
        assert not DOUBLE_ESCAPED.search(html), (name, DOUBLE_ESCAPED.findall(html))
        assert doc.render(MARKDOWN).decode("utf-8") == a.report_markdown
        assert f"<title>{doc.title}</title>" in html and a.id in html
        meaning = get_spec(a.protocol.protocol_id).decisions[a.decision].meaning
        assert a.decision in html or meaning.lower() in html.lower(), name
        if a.plan.regimen is not None:
            assert a.plan.regimen.drug.lower() in html.lower() and a.plan.regimen.dose in html
        assert (DRAFT_LABEL in html) == (a.status == "awaiting_signoff"), name
