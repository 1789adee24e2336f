"""The weekly report: every figure equals what the store and the run say; HTML, Markdown and PDF;
customer text is inert in every format."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import re
import threading
import warnings
from collections import Counter
from datetime import date
from html.parser import HTMLParser
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import ClassVar

import pytest
from markupsafe import escape
from sqlalchemy import func, select
from typer.testing import CliRunner

from agents.runner import run_and_write
from tests.conftest import kb_with_voices
from tests.factories import cluster_dict
from tests.test_weekly_run import rows
from voc.config import Settings, get_settings
from voc.contracts import TAG_SOURCE, Cluster, Incident, ProposalStatus, RunOutputs, Unproposed, read_proposals
from voc.knowledge import load_cases, load_docs
from voc.knowledge_base import KnowledgeBase
from voc.lifecycle import ProposalBook
from voc.periods import parse_week
from voc.pii import mask_text
from voc.report import charts
from voc.report.cards import CARD_QUOTE_CHARS, ProposalCard
from voc.report.data import REPORT_SEGMENTS, FunnelStep, Quote, ReportData, build_report
from voc.report.render import markdown_text, render_html, render_markdown, render_pdf, write_report
from voc.storage import Store, VoiceRow

WEEK = "2026-W47"
AS_OF = date(2026, 11, 23)
SECTIONS = ("headline", "funnel", "dimensions", "problems", "incidents", "spikes", "proposals", "segments", "earlier")


@pytest.fixture(scope="module")
def settings(loaded_kb: KnowledgeBase, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """A copy of the session's knowledge base with a store and runs of its own (the lifecycle changes here)."""
    return kb_with_voices(loaded_kb, tmp_path_factory.mktemp("report"), rows())


@pytest.fixture(scope="module")
def run_dir(settings: Settings) -> Path:
    target, _ = asyncio.run(run_and_write(settings, period=parse_week(WEEK), run_id="report-run"))
    book = ProposalBook(Store(settings.resolved_database_url))
    proposals = read_proposals(target)
    book.update(proposals[0].proposal_id, ProposalStatus.FIXING, "张三", "已认领")
    earlier = proposals[-1].model_copy(update={"proposal_id": "PR-2026-W44-003", "cluster_id": "C900",
                                               "due_date": date(2026, 11, 6)})
    book.register("old-run", "2026-W44", [earlier], [Cluster.model_validate(cluster_dict(
        cluster_id="C900", tag="其他>其他>旧问题", keywords=[]))])
    return target


@pytest.fixture(scope="module")
def data(settings: Settings, run_dir: Path) -> ReportData:
    store = Store(settings.resolved_database_url)
    return build_report(store, run_dir, as_of=AS_OF, knowledge_dir=settings.knowledge_dir)


def _count(store: Store, week: str, *conditions: object) -> int:
    period = parse_week(week)
    with store.session() as session:
        return session.scalar(select(func.count()).select_from(VoiceRow).where(
            VoiceRow.local_date.between(period.start, period.end), VoiceRow.duplicate_of.is_(None), *conditions)) or 0


def test_every_figure_equals_the_store_and_the_run(settings: Settings, run_dir: Path, data: ReportData) -> None:
    store = Store(settings.resolved_database_url)
    run = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    results = [json.loads(line) for line in (run_dir / "voices.jsonl").read_text(encoding="utf-8").splitlines()]
    clusters = json.loads((run_dir / "clusters.json").read_text(encoding="utf-8"))
    proposals = json.loads((run_dir / "proposals.json").read_text(encoding="utf-8"))
    headline = {f.name: (f.current, f.previous) for f in data.headline}
    counted = (run["counts"]["voices"], run["counts"]["previous_voices"])
    assert headline["客户声音（去重后）"] == (_count(store, WEEK), _count(store, "2026-W46")) == counted
    assert headline["负面声音"] == (sum(r["sentiment"] == "负面" for r in results), run["counts"]["previous_negative"])
    escalated = VoiceRow.funnel_tier.in_([5, 6])
    assert headline["投诉及监管转送"] == (_count(store, WEEK, escalated), _count(store, "2026-W46", escalated))
    with store.session() as session:
        customers = session.scalar(select(func.count(func.distinct(VoiceRow.customer_id))).where(
            VoiceRow.iso_week == WEEK, VoiceRow.duplicate_of.is_(None)))
    assert headline["涉及客户"][0] == customers
    for step in data.funnel:
        assert (step.current, step.previous) == (_count(store, WEEK, VoiceRow.funnel_tier == step.tier),
                                                 _count(store, "2026-W46", VoiceRow.funnel_tier == step.tier))
    negatives = Counter(r["dimension"] for r in results if r["sentiment"] == "负面")
    assert {d.dimension: d.current for d in data.dimensions} == {d: negatives.get(d, 0) for d in "人机物法环"}
    assert {d.dimension: d.previous for d in data.dimensions if d.previous} == run["counts"]["previous_dimensions"]
    assert [(p.cluster_id, p.current_count, p.previous_count, p.priority) for p in
            sorted(data.problems, key=lambda p: p.cluster_id)] == [
        (c["cluster_id"], c["current_count"], c["previous_count"], c["priority"]) for c in clusters]
    assert {p.cluster_id for p in data.spikes} == {c["cluster_id"] for c in clusters if c["rising"]}
    listed = {c.proposal_id: c for c in data.cards}
    assert {p["proposal_id"]: (p["owner_department"], p["due_date"]) for p in proposals} == {
        i: (c.owner_department, c.due_date.isoformat()) for i, c in listed.items()}
    assert listed[proposals[0]["proposal_id"]].status == "整改中"
    assert [c.priority.rank for c in data.cards] == sorted(c.priority.rank for c in data.cards)  # P1 first
    assert sorted(i for o in data.owners for i, _ in o.proposals) == sorted(listed)
    for view in data.segments:
        assert (view.current, view.previous) == (_count(store, WEEK, VoiceRow.customer_segment == view.name),
                                                 _count(store, "2026-W46", VoiceRow.customer_segment == view.name))
    assert [s.name for s in data.segments] == list(REPORT_SEGMENTS)
    assert [(v.proposal_id, v.overdue) for v in data.earlier] == [("PR-2026-W44-003", True)]
    assert data.earlier_status["逾期"] == 1 and data.earlier_status["待认领"] == 1


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.sections: dict[str, list[str]] = {}
        self.images: list[str] = []
        self.links: list[str] = []
        self._current: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "section":
            self._current = values.get("id")
            self.sections[self._current or ""] = []
        if tag == "img":
            self.images.append(values.get("src") or "")
        if tag in ("link", "script") or (tag == "a" and values.get("href")):
            self.links.append(tag)

    def handle_data(self, text: str) -> None:
        if self._current and text.strip():
            self.sections[self._current].append(text.strip())


def test_html_is_self_contained_with_every_section_and_its_figures(data: ReportData) -> None:
    html = render_html(data)
    page = _Page()
    page.feed(html)
    assert set(SECTIONS) <= set(page.sections)
    assert not page.links and "http://" not in html and "https://" not in html  # opens offline
    assert "@font-face" in html and "data:font/woff;base64," in html
    assert len(page.images) == 3 and all(src.startswith("data:image/png;base64,") for src in page.images)
    funnel = page.sections["funnel"]
    for step in data.funnel:
        row = funnel[funnel.index(f"{step.tier}. {step.name}"):][:5]
        assert [row[1], row[3]] == [str(step.current), str(step.previous)]
    headline = " ".join(page.sections["headline"])
    assert all(str(f.current) in headline and f"上周 {f.previous}" in headline for f in data.headline)
    cards = " ".join(page.sections["proposals"])
    assert all(c.proposal_id in cards and str(c.due_date) in cards for c in data.cards)
    assert "13812345678" not in html  # the injected voice's phone number stays masked


def test_charts_draw_chinese_with_the_bundled_font(data: ReportData) -> None:
    from PIL import Image

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pngs = [charts.funnel_chart(data.funnel), charts.dimension_chart(data.dimensions),
                charts.matrix_chart(data.problems)]
    assert not [w for w in caught if "missing from" in str(w.message)]  # no glyph drawn as a box
    for png in pngs:
        image = Image.open(io.BytesIO(png)).convert("L")
        assert image.size[0] > 500 and len(set(image.getdata())) > 10


def test_markdown_and_pdf(data: ReportData, tmp_path: Path) -> None:
    import pypdfium2 as pdfium

    written = write_report(data, tmp_path)
    markdown = written["md"].read_text(encoding="utf-8")
    for figure in data.headline:
        assert f"| {figure.name} | {figure.current} | {figure.previous} |" in markdown
    assert all(p.cluster_id in markdown for p in data.problems)
    pdf = pdfium.PdfDocument(str(written["pdf"]))
    assert len(pdf) >= 2
    for index in range(len(pdf)):
        image = pdf[index].render(scale=0.5).to_pil().convert("L")
        inked = sum(count for level, count in enumerate(image.histogram()) if level < 250)
        assert inked / (image.width * image.height) > 0.01  # every page has something drawn on it
    text = pdf[0].get_textpage().get_text_range()
    assert "客户心声" in text and data.week in text
    with pytest.raises(ValueError, match="unknown report format"):
        write_report(data, tmp_path, ("docx",))


def test_cli_reuses_the_weeks_run(settings: Settings, run_dir: Path, monkeypatch: pytest.MonkeyPatch,
                                  tmp_path: Path) -> None:
    from voc.cli import app

    monkeypatch.setenv("VOC_DATA_DIR", str(settings.data_dir))
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["report", "--week", WEEK, "--format", "md", "--out", str(tmp_path)])
        listed = CliRunner().invoke(app, ["proposals", "list", "--status", "整改中"])
        wrong = CliRunner().invoke(app, ["proposals", "update", "PR-2026-W44-003", "--status", "已验证", "--by", "x"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert "沿用运行 report-run" in result.output and (tmp_path / "report.md").exists()
    assert listed.exit_code == 0 and "整改中" in listed.output
    assert wrong.exit_code == 2 and "verify" in wrong.output


def test_font_subset_is_small_and_covers_the_text() -> None:
    from fontTools.ttLib import TTFont

    from voc.report.fonts import subset_font_data_uri

    uri = subset_font_data_uri("客户心声周报人机物法环")
    font = TTFont(io.BytesIO(base64.b64decode(uri.split(",", 1)[1])))
    assert len(uri) < 60_000 and all(ord(c) in font.getBestCmap() for c in "客户心声周报人机物法环")


# ---------------------------------------------------------------- proposal cards, incidents, honest numbers


def _html_block(html: str, card_id: str) -> str:
    return html.split(f'id="{card_id}">', 1)[1].split("</article>", 1)[0]


def _md_block(markdown: str, card: ProposalCard) -> str:
    after = markdown.split(f"### {card.priority} · {card.proposal_id} ·", 1)[1]
    return after.split("\n### ", 1)[0].split("\n## ", 1)[0]


def _titles(settings: Settings) -> dict[str, str]:
    cases, docs = load_cases(settings.knowledge_dir / "cases"), load_docs(settings.knowledge_dir / "docs")
    return {c.id: c.title for c in cases} | {d.id: d.title for d in docs}


def test_a_card_per_proposal_with_every_field(settings: Settings, run_dir: Path, data: ReportData) -> None:
    proposals = {p.proposal_id: p for p in read_proposals(run_dir)}
    titles = _titles(settings)
    html, markdown = render_html(data, font=False), render_markdown(data)
    assert html.count('<article class="proposal') == len(data.cards) == len(proposals) > 0
    assert "break-inside: avoid" in html.split(".proposal {", 1)[1].split("}", 1)[0]
    for card in data.cards:
        p = proposals[card.proposal_id]
        assert (card.problem, card.root_cause, card.owner_department, card.priority) == (
            p.problem, p.root_cause, p.owner_department, p.priority)
        assert [m.text for m in card.short_term] == p.short_term_measures
        assert [m.text for m in card.long_term] == p.long_term_measures
        sources = {m.measure: m.source for m in p.measure_sources}
        for m in card.short_term + card.long_term:
            assert m.source == sources.get(m.text, "")
            if m.source.startswith(TAG_SOURCE):
                assert m.source_label == f"数据词典·标签「{m.source.removeprefix(TAG_SOURCE)}」的典型措施"
            elif m.source in titles:
                assert f"{m.source}《{titles[m.source]}》" in m.source_label
        assert card.kpis == p.kpis and all(k.target < k.baseline for k in card.kpis)
        assert all(q.text == mask_text(q.text) and len(q.text) <= CARD_QUOTE_CHARS for q in card.quotes)
        block, md = _html_block(html, card.proposal_id), _md_block(markdown, card)
        kpis = [f"{k.baseline} → {k.target} {k.unit}" for k in card.kpis]
        measures = [m.text for m in card.short_term + card.long_term]
        fields = [card.owner_department, str(card.due_date), card.status, card.problem, card.root_cause,
                  *measures, *card.sources, *kpis, *(q.text for q in card.quotes)]
        assert all(str(escape(text)) in block for text in fields), card.proposal_id
        assert all(markdown_text(text) in md for text in fields), card.proposal_id
    assert any("《" in label for card in data.cards for label in card.sources)  # case titles from the knowledge base


def test_markdown_and_html_carry_the_same_sections(data: ReportData) -> None:
    html_headings = re.findall(r"<h2>(.*?)</h2>", render_html(data, font=False))
    markdown_headings = re.findall(r"^## (.+)$", render_markdown(data), re.M)
    assert html_headings == markdown_headings and len(html_headings) == len(SECTIONS)


def test_funnel_ratios_only_between_nested_tiers(data: ReportData) -> None:
    tier = {s.tier: s for s in data.funnel}
    ratios = {r.name: r for r in data.funnel_ratios}
    escalated = tier[5].current + tier[6].current
    assert (ratios["升级率"].current_part, ratios["升级率"].current_whole) == (escalated, data.headline[0].current)
    assert (ratios["监管转送占比"].current_part, ratios["监管转送占比"].current_whole) == (tier[6].current, escalated)
    assert all(r.current_part <= r.current_whole and r.previous_part <= r.previous_whole for r in data.funnel_ratios)
    assert "conversion" not in FunnelStep.model_fields
    html = render_html(data, font=False)
    assert "转化率（本层级/上一层级）" not in html and "层级之间不是子集关系" in html


def incident_run(run_dir: Path, target: Path) -> Path:
    """A copy of the week's run where the first proposal answers an incident of its problem and another
    one, and the last proposal is left out (unproposed)."""
    outputs = RunOutputs.load(run_dir)
    main, dropped = outputs.proposals[0], outputs.proposals[-1]
    other = next(c for c in outputs.clusters if c.cluster_id != main.cluster_id)
    linked = [main.cluster_id, other.cluster_id]
    incident = Incident(incident_id="INC-2026-W47-01", cluster_ids=linked, owner_department=main.owner_department,
                        cause="手机银行新版本上线", onset=date(2026, 11, 16))
    summary = outputs.summary.model_copy(update={"incidents": [incident], "unproposed": [Unproposed(
        cluster_id=dropped.cluster_id, priority=dropped.priority, reason="超出每期建议上限（max_proposals=2）")]})
    clusters = [c.model_copy(update={"incident_id": incident.incident_id}) if c.cluster_id in linked else c
                for c in outputs.clusters]
    proposals = [main.model_copy(update={"cluster_ids": linked, "incident_id": incident.incident_id}),
                 *(p for p in outputs.proposals[1:] if p is not dropped and p.cluster_id not in linked)]
    RunOutputs(summary=summary, voices=outputs.voices, clusters=clusters, proposals=proposals).write(target)
    return target


def test_incidents_and_unproposed_problems(settings: Settings, run_dir: Path, tmp_path: Path) -> None:
    variant = incident_run(run_dir, tmp_path / "run")
    data = build_report(Store(settings.resolved_database_url), variant, as_of=AS_OF)
    html, markdown = render_html(data, font=False), render_markdown(data)
    [incident] = data.incidents
    assert [s.cluster_id for s in incident.symptoms] == RunOutputs.load(variant).summary.incidents[0].cluster_ids
    page = _Page()
    page.feed(html)
    listed = " ".join(page.sections["incidents"])
    assert "INC-2026-W47-01 手机银行新版本上线" in listed and "2026-11-16" in listed
    for s in incident.symptoms:
        line = f"{s.cluster_id}（{s.priority}）{s.label}：上周 {s.previous} → 本周 {s.current} 条"
        assert markdown_text(line) in markdown and s.label in listed
    card = next(c for c in data.cards if c.incident)
    assert card.proposal_id == incident.proposal_id and [s.cluster_id for s in card.symptoms] == [
        s.cluster_id for s in incident.symptoms]
    assert "事件" in _html_block(html, card.proposal_id) and "INC-2026-W47-01" in _md_block(markdown, card)
    [left] = data.unproposed
    for text in (html, markdown):
        assert "1 个 P1–P3 问题未形成建议" in text and "原因：超出每期建议上限（max_proposals=2）" in text
        assert left.cluster_id in text.split("未形成建议", 1)[1].split("原因", 1)[0]
    assert left.cluster_id in " ".join(page.sections["problems"]).split("未形成（见第七节）")[0]


@pytest.fixture(scope="module")
def first_week(loaded_kb: KnowledgeBase, tmp_path_factory: pytest.TempPathFactory) -> ReportData:
    """The same week with nothing before it: a new installation's first report."""
    voices = [r for r in rows() if str(r["created_at"]) >= "2026-11-16"]
    settings = kb_with_voices(loaded_kb, tmp_path_factory.mktemp("first"), voices)
    target, _ = asyncio.run(run_and_write(settings, period=parse_week(WEEK), run_id="first-run"))
    return build_report(Store(settings.resolved_database_url), target, as_of=AS_OF)


def test_the_first_week_compares_with_nothing(first_week: ReportData) -> None:
    assert first_week.first_week and first_week.cards
    page = _Page()
    page.feed(render_html(first_week, font=False))
    shown = " ".join(" ".join(texts) for texts in page.sections.values())
    for text in (shown, render_markdown(first_week)):
        assert "首周无对比" in text
        wrong = re.search(r".{0,20}(显著上升|环比|上周 0|上期0条|\+\d).{0,20}", text)
        assert wrong is None, wrong.group(0)
    assert all("首周无对比" in s.trend for c in first_week.cards for s in c.symptoms)


# ---------------------------------------------------------------- customer text is data, in every format

HOSTILE = (
    "<script>alert(1)</script>",
    '<img src=x onerror="alert(2)">',
    "<iframe src=javascript:alert(3)></iframe>",
    '"><svg onload=alert(4)>',
    "[点我](javascript:alert(5)) ![x](http://evil.example/track.png)",
    "| 伪造 | 表格 |\n## 伪造标题",
    "\\[点此领取补偿\\](http://evil.example/md) 与 \\[x\\](javascript:alert(6)) www.evil.example mailto:a@b.cn",
)


class _Elements(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def _hostile(data: ReportData, beacon: str = "http://evil.example/beacon.png") -> ReportData:
    """The week's report with customer-controlled strings replaced by attacks."""
    texts = [*HOSTILE, f"<img src={beacon}>", f'<link rel=stylesheet href="{beacon}.css">',
             f"<style>@import url({beacon}.css);</style>"]
    problems = []
    for i, problem in enumerate(data.problems):
        quotes = [Quote(voice_id=q.voice_id, channel=q.channel, segment=q.segment, text=texts[(i + j) % len(texts)])
                  for j, q in enumerate(problem.quotes or [Quote(voice_id="V1", channel="x", segment="y", text="")])]
        problems.append(problem.model_copy(update={"quotes": quotes, "rising": True,
                                                   "label": texts[i % len(texts)],
                                                   "keywords": [texts[(i + 1) % len(texts)]]}))
    return data.model_copy(update={"problems": problems})


def test_html_report_has_no_live_customer_markup(data: ReportData) -> None:
    html = render_html(_hostile(data), font=False)
    parser = _Elements()
    parser.feed(html)
    tags = {tag for tag, _ in parser.tags}
    assert not tags & {"script", "iframe", "svg", "link"}
    assert not any(name.startswith("on") for _, attrs in parser.tags for name in attrs)
    images = [attrs.get("src") or "" for tag, attrs in parser.tags if tag == "img"]
    assert images and all(src.startswith("data:image/png;base64,") for src in images)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "@import" not in html.split("</style>", 1)[1]  # only the report's own stylesheet is live


def test_markdown_report_is_inert(data: ReportData) -> None:
    markdown = render_markdown(_hostile(data))
    for live in ("<script", "<img", "<iframe", "<svg", "<link", "![x](", "http://", "\n## 伪造"):
        assert live not in markdown
    # `\](javascript` is an escaped bracket, plain text; a `](` after an even run of backslashes is live.
    assert not re.search(r"(?<!\\)(\\\\)*\]\(javascript", markdown)
    assert "&lt;script&gt;" in markdown
    # What a mail or IM client makes of it: CommonMark with raw HTML and bare-link detection on.
    from markdown_it import MarkdownIt

    rendered = MarkdownIt("commonmark", {"html": True, "linkify": False}).render(markdown)
    assert not re.search(r"<(a|img|script|iframe|svg|link)\b", rendered), rendered[:2000]


@pytest.mark.parametrize(("text", "expected"), [
    ("<b>加粗</b>", "&lt;b&gt;加粗&lt;/b&gt;"),
    ("[a](http://x.cn)", "\\[a\\](http\\://x.cn)"),
    ("\\[点我\\](javascript:alert(1))", "\\\\\\[点我\\\\\\](javascript\\:alert(1))"),
    ("见 www.evil.example 或 mailto:a@b.cn", "见 www\\.evil.example 或 mailto\\:a@b.cn"),
    ("a|b\nc", "a／b c"),
    ("转账 5,000 元失败", "转账 5,000 元失败"),
])
def test_markdown_escaping(text: str, expected: str) -> None:
    assert markdown_text(text) == expected


class _Beacon(BaseHTTPRequestHandler):
    hits: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        _Beacon.hits.append(self.path)
        self.send_response(404)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_pdf_fetches_nothing_a_voice_names(data: ReportData, tmp_path: Path) -> None:
    server = HTTPServer(("127.0.0.1", 0), _Beacon)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    beacon = f"http://127.0.0.1:{server.server_address[1]}/beacon.png"
    try:
        html = render_html(_hostile(data, beacon), font=False)
        # Even markup that reached the page unescaped must not make the PDF step fetch anything.
        html = html.replace("</body>", f'<img src="{beacon}"><link rel=stylesheet href="{beacon}.css"></body>')
        render_pdf(html, tmp_path / "report.pdf")
    finally:
        server.shutdown()
    assert (tmp_path / "report.pdf").stat().st_size > 1000
    assert _Beacon.hits == []
