"""HTML -> PDF with WeasyPrint, imported only when a PDF is asked for (it takes about a second
and a half to import, so it stays off every other path: the CLI, the API's other routes, tests).

WeasyPrint lays out the HTML and CSS of html.py (the same file the HTML format serves), so the
two formats cannot drift apart. It fetches nothing: every URL is refused, the document is
self-contained.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from clinreason.errors import ClinreasonError


class PdfUnavailable(ClinreasonError):
    """The PDF could not be made (WeasyPrint or its system libraries missing, or rendering failed).
    The other formats of the same document still work."""

    status = 503
    exit_code = 5
    problem_type = "pdf-unavailable"
    title = "PDF rendering unavailable"


# One PDF at a time per process: fontconfig and pango are not reliably thread-safe, and layout is
# CPU-bound anyway (the API renders in worker threads).
_LOCK = threading.Lock()


def _refuse(url: str, *args: Any, **kwargs: Any) -> Any:
    raise ValueError(f"clinreason PDFs fetch nothing (refused {url[:80]!r})")


def _weasyprint() -> Any:
    try:
        import weasyprint
    except ImportError as exc:  # not installed
        raise PdfUnavailable("PDF output needs WeasyPrint: pip install 'clinreason[pdf]'; Markdown and HTML are available") from exc
    except OSError as exc:  # installed, but pango or its fonts are missing
        raise PdfUnavailable(f"WeasyPrint cannot load its system libraries (pango): {exc}; Markdown and HTML are available") from exc
    logging.getLogger("fontTools").setLevel(logging.WARNING)  # subsetting chatter
    return weasyprint


def to_pdf(html: str) -> bytes:
    """The PDF of one self-contained HTML document (html.to_html). PdfUnavailable on any failure."""
    weasyprint = _weasyprint()
    try:
        with _LOCK:
            return weasyprint.HTML(string=html, url_fetcher=_refuse).write_pdf()
    except Exception as exc:  # a layout bug must not become a 500
        raise PdfUnavailable(f"the PDF could not be rendered ({type(exc).__name__}); Markdown and HTML are available") from exc
