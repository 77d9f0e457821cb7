"""Output formats of an assessment's documents: the clinician report and the primary-care
notification, each as Markdown, one self-contained HTML file, or PDF (service layer: reads the
stored assessment, below the API and the CLI that serve it).

    html.py           Markdown -> HTML5 (markdown-it-py, raw HTML off; inline CSS, print rules)
    pdf.py            HTML -> PDF (WeasyPrint, imported only when a PDF is asked for)
    notification.py   the notification's Markdown, from the stored record

Markdown is the source of both other formats, so the three always say the same thing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from clinreason.assessment import Assessment
from clinreason.rendering.html import DRAFT_LABEL, to_html
from clinreason.rendering.notification import TITLE as NOTIFICATION_TITLE
from clinreason.rendering.notification import (
    notification_markdown,
    patient_from_checkpoint,
    status_words,
)
from clinreason.rendering.pdf import PdfUnavailable, to_pdf

MARKDOWN, HTML, PDF = "text/markdown", "text/html", "application/pdf"
FORMATS: dict[str, str] = {"md": MARKDOWN, "html": HTML, "pdf": PDF}  # CLI --format -> media type
EXTENSIONS: dict[str, str] = {media: ext for ext, media in FORMATS.items()}
_H1 = re.compile(r"^#\s+(.+?)\s*#*\s*$", re.MULTILINE)


@dataclass(frozen=True)
class Document:
    """One document of an assessment, in Markdown, with what its HTML and PDF forms need."""

    kind: str  # "report" | "notification"
    markdown: str
    title: str
    assessment_id: str
    status: str  # plain words: "awaiting sign-off", "final"
    draft: bool
    created: str | None = None

    def render(self, media_type: str) -> bytes:
        """The document as `media_type` (one of FORMATS' values); PdfUnavailable if a PDF cannot be made."""
        if media_type == MARKDOWN:
            return self.markdown.encode("utf-8")
        html = self.html()
        return html.encode("utf-8") if media_type == HTML else to_pdf(html)

    def html(self) -> str:
        from clinreason import __version__

        # The notification says DRAFT in its own text; the report's status line is its own too,
        # so the banner is for the report only and the page marker for both.
        return to_html(self.markdown, self.title, assessment_id=self.assessment_id, status=self.status, draft=self.draft,
                       draft_banner=self.kind == "report", created=self.created, generator=f"clinreason {__version__}")

    def filename(self, media_type: str) -> str:
        return f"{self.kind}-{self.assessment_id}.{EXTENSIONS[media_type]}"


def _title(markdown: str, default: str) -> str:
    m = _H1.search(markdown)
    return m.group(1).replace("`", "").replace("**", "") if m else default


def _common(a: Assessment) -> dict[str, Any]:
    return {"assessment_id": a.id or "", "status": status_words(a.status), "draft": a.status == "awaiting_signoff",
            "created": (a.audit or {}).get("created_at")}


def report_document(a: Assessment) -> Document:
    """The clinician report: the stored `report_markdown`, rendered as it is."""
    markdown = a.report_markdown or ""
    return Document(kind="report", markdown=markdown, title=_title(markdown, "Assessment report"), **_common(a))


def notification_document(a: Assessment, patient: dict[str, Any] | None = None) -> Document:
    """The notification to the patient's primary care provider (patient: the input, for age and sex)."""
    return Document(kind="notification", markdown=notification_markdown(a, patient), title=NOTIFICATION_TITLE, **_common(a))


__all__ = ["DRAFT_LABEL", "EXTENSIONS", "FORMATS", "HTML", "MARKDOWN", "PDF", "Document", "PdfUnavailable", "notification_document",
           "notification_markdown", "patient_from_checkpoint", "report_document", "to_html", "to_pdf"]
