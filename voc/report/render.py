"""Render a week's `ReportData` as self-contained HTML, Markdown for mail/IM, and PDF (WeasyPrint)."""

from __future__ import annotations

import base64
import re
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined

from voc.report import charts
from voc.report.data import ReportData
from voc.report.fonts import FAMILY, subset_font_data_uri

FORMATS = ("html", "md", "pdf")


_URL_SCHEME_RE = re.compile(r"(?i)\b(https?|ftps?|file|javascript|vbscript|data|mailto|tel|sms)\s*:\s*(//)?")
_WWW_RE = re.compile(r"(?i)\b(www)\.")
_MD_ESCAPES = str.maketrans({"\\": "\\\\", "&": "&amp;", "<": "&lt;", ">": "&gt;", "[": "\\[", "]": "\\]",
                             "|": "／", "\n": " ", "\r": " ", "`": "'"})


def markdown_text(value: Any) -> Any:
    """Customer text made inert in Markdown: no raw HTML, no link or image syntax, no table or
    line breaks, and no bare URL that a mail or IM client would turn into a link and fetch."""
    if not isinstance(value, str):
        return value
    # The backslash is escaped too: `\[` would otherwise become a literal backslash and a live `[`.
    inert = value.translate(_MD_ESCAPES)
    inert = _URL_SCHEME_RE.sub(lambda m: f"{m.group(1)}\\:{'//' if m.group(2) else ''}", inert)
    return _WWW_RE.sub(r"\1\\.", inert)


def _environment(markdown: bool = False) -> Environment:
    # Autoescape is on for every template whatever its file name: `select_autoescape(["html"])`
    # would not match `report.html.j2`, and the report carries customers' own words.
    environment = Environment(loader=PackageLoader("voc.report", "templates"), undefined=StrictUndefined,
                              autoescape=not markdown, trim_blocks=True, lstrip_blocks=True,
                              finalize=markdown_text if markdown else None)
    environment.filters["pct"] = lambda v: "—" if v is None else f"{v:.1%}"
    environment.filters["signed_pct"] = lambda v: "—" if v is None else f"{v:+.1%}"
    environment.filters["signed"] = lambda v: f"{v:+d}"
    environment.filters["pairs"] = lambda items: "、".join(f"{k} {v}" for k, v in items) or "—"
    environment.filters["leaf_pairs"] = lambda items: "、".join(f"{k.split('>')[-1]} {v}" for k, v in items) or "—"
    environment.filters["tag_path"] = lambda path: path.replace(">", " › ")  # L1 › L2 › L3, no &gt; in Markdown
    return environment


def _data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def render_html(data: ReportData, font: bool = True) -> str:
    """One file that opens offline: charts inlined as PNG, a subset of the CJK font inlined for text."""
    images = {"funnel": _data_uri(charts.funnel_chart(data.funnel)),
              "dimensions": _data_uri(charts.dimension_chart(data.dimensions)),
              "matrix": _data_uri(charts.matrix_chart(data.problems))}
    template = _environment().get_template("report.html.j2")
    page = template.render(data=data, images=images, font_family=FAMILY, font_uri="")
    if not font:
        return page
    # The subset needs the page's own characters, so render once to learn them.
    return template.render(data=data, images=images, font_family=FAMILY, font_uri=subset_font_data_uri(page))


def render_markdown(data: ReportData) -> str:
    return _environment(markdown=True).get_template("report.md.j2").render(data=data)


def pdf_document(html: str) -> Any:
    """The report laid out in pages (a WeasyPrint Document): its boxes tell where every card and row landed."""
    import logging

    from weasyprint import HTML
    from weasyprint.urls import URLFetcher

    # WeasyPrint warns on every font that it subsets with fontTools instead of HarfBuzz: harmless.
    logging.getLogger("weasyprint").setLevel(logging.ERROR)
    # The report's own charts and font are data: URIs. Any other URL (one that reached the page
    # from a voice) is refused, so drawing the PDF makes no network or file request.
    return HTML(string=html, url_fetcher=URLFetcher(allowed_protocols=("data",))).render()


def render_pdf(html: str, target: Path) -> None:
    pdf_document(html).write_pdf(target)


def write_report(data: ReportData, out_dir: Path, formats: tuple[str, ...] = FORMATS) -> dict[str, Path]:
    unknown = set(formats) - set(FORMATS)
    if unknown:
        raise ValueError(f"unknown report format(s): {', '.join(sorted(unknown))}; choose from {', '.join(FORMATS)}")
    out_dir.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    if "html" in formats or "pdf" in formats:
        html = render_html(data)
        if "html" in formats:
            written["html"] = out_dir / "report.html"
            written["html"].write_text(html, encoding="utf-8")
        if "pdf" in formats:
            written["pdf"] = out_dir / "report.pdf"
            render_pdf(html, written["pdf"])
    if "md" in formats:
        written["md"] = out_dir / "report.md"
        written["md"].write_text(render_markdown(data), encoding="utf-8")
    return written
