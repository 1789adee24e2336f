"""The report as a reader sees it: the PDF laid out by WeasyPrint and drawn page by page, the HTML in
Chromium. Layout facts are checked on WeasyPrint's own boxes (no table cell narrower than a few
characters, no table row or proposal card split across pages, nothing wider than the page even when a
customer writes a 150-character word), then on the pictures (no page left mostly empty) and on the
PDF's text (every proposal and incident is in it). The pages are kept as PNG
in tests/artifacts/report_pages/ (page-01.png …, report.pdf, report_html.png) for a person to look at."""

from __future__ import annotations

import asyncio
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from agents.runner import run_and_write
from tests.conftest import kb_with_voices
from tests.test_report import AS_OF, WEEK, incident_run
from tests.test_weekly_run import rows
from voc.knowledge_base import KnowledgeBase
from voc.periods import parse_week
from voc.report.data import ReportData, build_report
from voc.report.render import pdf_document, render_html
from voc.storage import Store

pytestmark = pytest.mark.slow

ARTIFACTS = Path(__file__).resolve().parent / "artifacts" / "report_pages"
CHROMIUM = Path("/usr/bin/chromium")
MIN_CELL_PX = 40  # CSS px: three Chinese characters at 9.5 pt; a one-character column is about 13
FOOTER = 0.07  # the bottom of a page that holds only the page footer
MIN_FILLED = 0.5  # every page but the last is inked at least down to half its height


@pytest.fixture(scope="module")
def data(loaded_kb: KnowledgeBase, tmp_path_factory: pytest.TempPathFactory) -> ReportData:
    """A small week with an incident and a problem left without a proposal, so every part of the report shows."""
    folder = tmp_path_factory.mktemp("pages")
    settings = kb_with_voices(loaded_kb, folder, rows())
    run_dir, _ = asyncio.run(run_and_write(settings, period=parse_week(WEEK), run_id="pages-run"))
    variant = incident_run(run_dir, folder / "variant")
    return build_report(Store(settings.resolved_database_url), variant, as_of=AS_OF,
                        knowledge_dir=settings.knowledge_dir)


@dataclass
class Layout:
    narrowest: list[tuple[float, str]] = field(default_factory=list)
    pages_of: dict[int, set[int]] = field(default_factory=lambda: defaultdict(set))
    names: dict[int, str] = field(default_factory=dict)
    overflowing: list[tuple[int, str]] = field(default_factory=list)  # (page, element) past the right margin

    def split(self) -> list[str]:
        return [self.names[k] for k, pages in self.pages_of.items() if len(pages) > 1]


def _layout(document: Any) -> Layout:
    """Where WeasyPrint put every table cell, body row and proposal card."""
    from weasyprint.formatting_structure import boxes

    layout = Layout()
    for number, page in enumerate(document.pages):
        right = page._page_box.content_box_x() + page._page_box.width
        for box in page._page_box.descendants():
            drawn = isinstance(box, (boxes.TextBox, boxes.LineBox, boxes.BlockBox, boxes.TableCellBox))
            if drawn and box.element_tag and box.position_x + box.margin_width() > right + 1:
                layout.overflowing.append((number + 1, box.element_tag))
            if isinstance(box, boxes.TableCellBox):
                layout.narrowest.append((box.width, "".join(box.element.itertext())[:20]))
            rows = box.children if isinstance(box, boxes.TableRowGroupBox) and not box.is_header else []
            blocks = [box] if box.element_tag == "article" else []
            for item in [*rows, *blocks]:
                layout.pages_of[id(item.element)].add(number)
                layout.names[id(item.element)] = "".join(item.element.itertext())[:40]
    layout.narrowest.sort()
    return layout


def _with_long_words(data: ReportData) -> ReportData:
    """Customer text without a break opportunity (a pasted URL, a row of one letter) in a table cell, a card
    and a quote: it must wrap inside the page."""
    word = "https_example_" + "A" * 150
    card = data.cards[0]
    quotes = [card.quotes[0].model_copy(update={"text": word}), *card.quotes[1:]] if card.quotes else []
    cards = [card.model_copy(update={"quotes": quotes, "root_cause": word}), *data.cards[1:]]
    problems = [data.problems[0].model_copy(update={"label": word}), *data.problems[1:]]
    return data.model_copy(update={"cards": cards, "problems": problems})


def _filled(image: Any) -> float:
    """How far down the page (0–1) something is drawn, above the footer."""
    grey = image.convert("L")
    width, height = grey.size
    pixels = grey.load()
    inked = [y for y in range(0, int(height * (1 - FOOTER)), 2) if any(pixels[x, y] < 200 for x in range(0, width, 3))]
    return max(inked) / height if inked else 0.0


def test_the_pdf_pages(data: ReportData) -> None:
    import pypdfium2 as pdfium

    html = render_html(_with_long_words(data))
    assert re.search(r"\.proposal \{[^}]*break-inside: avoid", html) and re.search(r"tr \{ break-inside: avoid", html)
    document = pdf_document(html)
    layout = _layout(document)
    assert layout.narrowest[0][0] >= MIN_CELL_PX, layout.narrowest[:3]
    assert not layout.split(), layout.split()  # no table row and no card runs over a page break
    assert not layout.overflowing, layout.overflowing[:5]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for old in ARTIFACTS.glob("page-*.png"):
        old.unlink()
    document.write_pdf(ARTIFACTS / "report.pdf")
    pdf = pdfium.PdfDocument(str(ARTIFACTS / "report.pdf"))
    assert len(pdf) > 0
    text = ""
    for index in range(len(pdf)):
        image = pdf[index].render(scale=1.5).to_pil()
        image.save(ARTIFACTS / f"page-{index + 1:02d}.png")
        if index < len(pdf) - 1:
            assert _filled(image) > MIN_FILLED, f"page {index + 1} is mostly empty"
        text += pdf[index].get_textpage().get_text_range()
    assert data.cards and all(c.proposal_id in text for c in data.cards)
    assert data.incidents and all(i.incident_id in text for i in data.incidents)
    assert all(heading in text for heading in re.findall(r"<h2>(.*?)</h2>", html))


@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed (CI installs it)")
def test_the_html_in_chromium(data: ReportData, tmp_path: Path) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    path = tmp_path / "report.html"
    path.write_text(render_html(data), encoding="utf-8")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"])
        try:
            page = browser.new_page(viewport={"width": 900, "height": 1200})
            page.goto(path.as_uri())
            overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
            narrowest = page.evaluate(
                "Math.min(...[...document.querySelectorAll('td, th')].map(e => e.getBoundingClientRect().width))")
            cards = page.locator("article.proposal").count()
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "report_html.png"), full_page=True)
        finally:
            browser.close()
    assert overflow <= 0 and narrowest >= MIN_CELL_PX and cards == len(data.cards)
