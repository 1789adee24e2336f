"""The web page end to end in a real browser: headless Chromium (Debian's /usr/bin/chromium) driven by
Playwright against the real app served by uvicorn on loopback, with a bearer token set: the page asks
for it, then chat streams its steps in Chinese (each shown running, then done) before the answer, the
dashboard leads with the P1–P2 problems and its charts load, the proposal board moves a card in the
analyst's name, the review queue pages and corrects owner, dimension, tag and sentiment, Chinese renders
with the app's own font (the browser is given no CJK font), and nothing breaks the page's
Content-Security-Policy. /docs and the served report render under their policies. Screenshots are kept
in tests/artifacts/ (web_chat.png, web_dashboard.png, web_review.png)."""

from __future__ import annotations

import importlib.util
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest
import uvicorn

from app import create_app
from tests.conftest import finish_run, free_port, kb_with_voices
from tests.test_weekly_run import rows
from voc.config import Settings
from voc.knowledge_base import KnowledgeBase

if TYPE_CHECKING:
    from playwright.sync_api import Dialog, Page

pytestmark = pytest.mark.slow

WEEK = "2026-W47"
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
BROWSER_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync"]
TIMEOUT_MS = 60_000
# Questions that name no product or scene: the engine cannot tell the owner, so they wait for review and
# the queue has more than one page of ten.
VAGUE = [{"id": f"vague-{n}", "created_at": f"2026-11-{17 + n % 5}T{10 + n % 10}:00:00", "channel": "在线客服",
          "customer_id": f"vague{n}", "text": text} for n, text in enumerate((
              "你好，我想问一下之前那个事情现在怎么样了", "请问这个要怎么弄", "上次说的还没有人联系我",
              "麻烦帮我看一下是什么情况", "我想咨询一下相关的规定", "怎么还没处理好", "能不能快一点",
              "这个问题到底谁负责", "我昨天问过一次了，还是不清楚", "在吗", "有人吗", "喂，你好", "怎么回事啊",
              "说好的回电呢", "还要等多久", "我不太明白", "你们能不能给个说法"))]
TOKEN = "e2e-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
# Every Content-Security-Policy violation on a page, reported by the browser itself.
WATCH_CSP = ("window.__csp = []; document.addEventListener('securitypolicyviolation', "
             "(e) => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));")
# Every chat step line the page ever showed as running (they turn done as the next one starts).
WATCH_RUNNING = """window.__running = [];
new MutationObserver((changes) => { for (const change of changes) for (const node of change.addedNodes)
  if (node.classList && node.classList.contains('running')) window.__running.push(node.textContent); })
  .observe(document, { childList: true, subtree: true });"""
# Two characters drawn in the page's own font: equal pictures (or a picture equal to a character no font
# has) mean boxes. Without the app's font this machine has no CJK glyph at all.
DRAW = """([a, b, none]) => {
  const family = getComputedStyle(document.body).fontFamily;
  const draw = (ch) => { const canvas = document.createElement('canvas'); canvas.width = canvas.height = 64;
    const g = canvas.getContext('2d'); g.font = `48px ${family}`; g.fillText(ch, 4, 52); return canvas.toDataURL(); };
  return { family, a: draw(a), b: draw(b), none: draw(none) };
}"""


@pytest.fixture(scope="session")
def browser_ready() -> None:
    """Skip (before the costly knowledge base and run) when the browser or Playwright is missing."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium (`make browser`, needs root)")
    if importlib.util.find_spec("playwright") is None:
        pytest.skip("playwright is missing: pip install -e '.[dev]' (never `playwright install`)")


@pytest.fixture(scope="module")
def base_url(browser_ready: None, loaded_kb: KnowledgeBase, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The real app on a free loopback port, with one finished run for WEEK."""
    settings: Settings = kb_with_voices(loaded_kb, tmp_path_factory.mktemp("web"), rows() + VAGUE)
    # A strict review threshold: the calibrated owner confidence routes most demo voices with certainty, and
    # the review-queue walk needs pages of flagged voices.
    settings = settings.model_copy(update={"api_token": TOKEN, "review_threshold": 0.97})
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="uvicorn-e2e", daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while not server.started:
            assert thread.is_alive(), "uvicorn exited before it started"
            assert time.monotonic() < deadline, "uvicorn did not start within 60 s"
            time.sleep(0.1)
        with httpx.Client(base_url=url, timeout=30, headers=AUTH) as client:
            finish_run(client, WEEK)
            assert client.post("/api/reports", json={"week": WEEK, "formats": ["html"]}).status_code == 201
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def test_chat_and_board_in_a_real_browser(base_url: str) -> None:
    from playwright.sync_api import expect, sync_playwright  # present: the fixture skips otherwise

    with sync_playwright() as playwright:
        # The browser's own fonts only: no fontconfig pointed at the font package. Chinese must come from the app.
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=BROWSER_ARGS, timeout=TIMEOUT_MS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900}, locale="zh-CN")
            page.set_default_timeout(TIMEOUT_MS)
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.add_init_script(WATCH_CSP)
            page.add_init_script(WATCH_RUNNING)
            page.goto(base_url + "/")

            # The token: asked for on the first 401, kept in sessionStorage, sent on every request.
            expect(page.locator("#login")).to_be_visible()
            page.fill("#token", TOKEN)
            page.locator("#login button[type=submit]").click()
            expect(page.locator("#login")).to_be_hidden()
            expect(page.locator(f'#week option[value="{WEEK}"]')).to_have_count(1)
            assert page.evaluate("sessionStorage.getItem('voc-api-token')") == TOKEN

            # Chinese renders in the app's own font, served by the app (cut from the bundled Noto Sans CJK).
            page.wait_for_function("() => document.fonts.load('16px VocCJK', '客户').then((faces) => faces.length > 0)")
            assert page.evaluate("document.fonts.check('16px VocCJK', '客户')")
            glyphs = page.evaluate(DRAW, ["客", "户", "\ue000"])
            assert "VocCJK" in glyphs["family"]
            assert glyphs["a"] != glyphs["b"] and glyphs["a"] != glyphs["none"], "Chinese is drawn as boxes"

            # Chat: the streamed steps land in #messages before the answer, in Chinese, each shown running
            # until the next one starts; the answer cites last week's counts.
            page.fill("#question", "本周哪些问题在上升？为什么？")
            page.locator("#ask button[type=submit]").click()
            answer = page.locator("#messages .msg.answer").filter(has_text="上周")
            answer.first.wait_for()
            kinds = page.eval_on_selector_all("#messages .msg", "nodes => nodes.map(n => n.classList[1])")
            assert "step" in kinds and kinds.index("step") < kinds.index("answer"), kinds
            assert page.locator("#messages .msg.error").count() == 0
            steps = page.eval_on_selector_all("#messages .msg.step", "nodes => nodes.map(n => n.textContent)")
            assert any(s.startswith("理解问题：上升问题及原因") for s in steps), steps
            assert any(s.startswith("工具 list_problems → 查询问题清单（2026年第47周") for s in steps), steps
            assert not any("{" in s or "rising" in s for s in steps), steps
            running = page.evaluate("window.__running")
            assert running and set(running) <= set(steps) | {"收到问题，开始处理"}, running  # shown while running
            expect(page.locator("#messages .msg.step.running")).to_have_count(0)  # ... and all done after
            assert page.locator("#messages .msg.step.done").count() == len(steps)
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "web_chat.png"))

            # Dashboard: the P1–P2 problems first, the others folded away; the charts come through fetch
            # (with the token) as blob: images.
            dashboard = httpx.get(f"{base_url}/api/dashboard/{WEEK}", timeout=30, headers=AUTH).json()
            top = [p["cluster_id"] for p in dashboard["problems"] if p["priority"] in ("P1", "P2")]
            page.locator('nav button[data-tab="dashboard"]').click()
            expect(page.locator("#headline .card").first).to_be_visible()
            expect(page.locator("#top-problems .problem")).to_have_count(len(top))
            assert sorted(page.eval_on_selector_all("#top-problems .problem", "ns => ns.map(n => n.dataset.id)")) == \
                sorted(top)
            expect(page.locator("#top-title")).to_have_text(f"重点问题（P1–P2，共 {len(top)} 个）")
            assert page.evaluate("document.querySelector('#other-problems').open") is False
            expect(page.locator("#problems tbody tr")).to_have_count(len(dashboard["problems"]) - len(top))
            for name in ("funnel", "dimensions", "matrix"):
                chart = page.locator(f"#chart-{name}")
                expect(chart).to_have_attribute("src", re.compile(r"^blob:"))
                page.wait_for_function("(img) => img.complete && img.naturalWidth > 0", arg=chart.element_handle())
            page.screenshot(path=str(ARTIFACTS / "web_dashboard.png"), full_page=True)

            # Board: the first unclaimed card moves to 整改中 via its button, in the page and in the API. The
            # page asks for the analyst's name first (once: it is kept in sessionStorage) and records it.
            page.locator('nav button[data-tab="board"]').click()
            expect(page.locator("#board")).to_be_visible()
            first = page.locator('#columns .column[data-status="待认领"] .proposal').first
            first.wait_for()
            pid = first.get_attribute("data-id")
            assert pid
            asked: list[str] = []

            def refuse(dialog: Dialog) -> None:
                asked.append(dialog.message)
                dialog.dismiss()

            page.once("dialog", refuse)
            first.locator('button[data-to="整改中"]').click()
            expect(page.locator("#actor")).to_be_focused()
            assert asked and "姓名" in asked[0]
            assert httpx.get(f"{base_url}/api/proposals/{pid}", timeout=30, headers=AUTH).json()["status"] == "待认领"
            page.fill("#actor", "王芳")
            page.locator("#actor-form button[type=submit]").click()
            expect(page.locator("#actor-name")).to_have_text("王芳")
            assert page.evaluate("sessionStorage.getItem('voc-actor')") == "王芳"
            page.locator(f'#columns .proposal[data-id="{pid}"] button[data-to="整改中"]').click()
            page.locator(f'#columns .column[data-status="整改中"] .proposal[data-id="{pid}"]').wait_for()
            expect(page.locator(f'#columns .column[data-status="待认领"] .proposal[data-id="{pid}"]')).to_have_count(0)
            moved = httpx.get(f"{base_url}/api/proposals/{pid}", timeout=30, headers=AUTH).json()
            assert moved["status"] == "整改中" and moved["events"][-1]["actor"] == "王芳"
            assert httpx.get(f"{base_url}/api/proposals/{pid}", timeout=30).status_code == 401

            _review_queue(page, base_url)
            page.screenshot(path=str(ARTIFACTS / "web_review.png"), full_page=True)
            assert not errors, errors
            assert page.evaluate("window.__csp") == []
            _docs_render_under_their_policy(browser.new_page(), base_url)
            _report_renders_under_its_policy(browser.new_page(), base_url)
        finally:
            browser.close()


def _review_queue(page: Page, base_url: str) -> None:
    """Every needs-review voice, a page at a time (next and previous), and a correction of owner, dimension,
    tag and sentiment from the selects, recorded in the analyst's name."""
    from playwright.sync_api import expect

    everything = httpx.get(f"{base_url}/api/reviews", params={"week": WEEK, "limit": 200}, timeout=30,
                           headers=AUTH).json()
    assert everything["total"] > 10 and everything["next_cursor"] is None
    page.locator('nav button[data-tab="review"]').click()
    page.select_option("#review-size", "10")
    rows = page.locator("#queue tbody tr")
    expect(rows).to_have_count(10)
    seen = rows.evaluate_all("rows => rows.map(r => r.dataset.id)")
    while page.locator("#review-next").is_enabled():
        page.locator("#review-next").click()
        expect(page.locator("#review-page")).to_contain_text(f"第 {len(seen) + 1}–")
        seen += rows.evaluate_all("rows => rows.map(r => r.dataset.id)")
    assert seen == [i["voice_id"] for i in everything["items"]]  # all of them, in order, once
    pages = -(-len(seen) // 10)
    page.locator("#review-prev").click()
    expect(page.locator("#review-page")).to_contain_text(f"第 {pages - 1} 页 · 第 {(pages - 2) * 10 + 1}–")
    page.select_option("#review-size", "50")
    expect(rows).to_have_count(min(50, len(seen)))

    row = page.locator("#queue tbody tr:not(.corrected)").first
    voice = row.get_attribute("data-id")
    taxonomy = httpx.get(f"{base_url}/api/taxonomy", timeout=30, headers=AUTH).json()
    departments = [d["name"] for d in httpx.get(f"{base_url}/api/service-matrix", timeout=30, headers=AUTH).json()[
        "departments"]]
    current = next(i for i in everything["items"] if i["voice_id"] == voice)["labels"]
    owner = next(d for d in departments if d != current["owner_department"])
    dimension = next(d["code"] for d in taxonomy["dimensions"] if d["code"] != current["dimension"])
    tag = next(t["path"] for t in taxonomy["tags"] if t["dimension"] == dimension)
    sentiment = next(s for s in ("负面", "中性", "正面") if s != current["sentiment"])
    assert row.locator('select[name="owner_department"] option').count() == len(departments)
    row.locator('select[name="owner_department"]').select_option(owner)
    row.locator('select[name="dimension"]').select_option(dimension)
    row.locator('select[name="tag"]').select_option(tag)
    row.locator('select[name="sentiment"]').select_option(sentiment)
    row.locator("button", has_text="提交复核").click()
    corrected = page.locator(f'#queue tbody tr.corrected[data-id="{voice}"]')
    expect(corrected.locator("td.labels")).to_contain_text("已复核（王芳）")
    stored = httpx.get(f"{base_url}/api/reviews", params={"week": WEEK, "limit": 200}, timeout=30,
                       headers=AUTH).json()
    fixed = next(i for i in stored["items"] if i["voice_id"] == voice)["corrected"]
    assert (fixed["owner_department"], fixed["dimension"], fixed["tag"], fixed["sentiment"], fixed["actor"]) == \
        (owner, dimension, tag, sentiment, "王芳")
    assert stored["pending"] == everything["pending"] - 1


def _docs_render_under_their_policy(page: Page, base_url: str) -> None:
    """/docs: Swagger UI from the app's own files, under a 'self'-only policy, nothing from a CDN."""
    page.add_init_script(WATCH_CSP)
    outside: list[str] = []
    page.on("request", lambda request: outside.append(request.url) if not request.url.startswith(base_url) else None)
    response = page.goto(f"{base_url}/docs")
    assert response is not None and response.status == 200
    page.locator(".swagger-ui .info .title").wait_for()
    page.locator(".swagger-ui .opblock").first.wait_for()
    assert outside == [] and page.evaluate("window.__csp") == []


def _report_renders_under_its_policy(page: Page, base_url: str) -> None:
    """The served report (inline style, charts and font as data: URIs) loads all it needs under its
    deny-all policy, and runs no script."""
    page.set_extra_http_headers(AUTH)
    page.add_init_script(WATCH_CSP)
    response = page.goto(f"{base_url}/api/reports/{WEEK}/report.html")
    assert response is not None and response.status == 200
    assert "default-src 'none'" in (response.headers.get("content-security-policy") or "")
    page.wait_for_function("[...document.images].every((img) => img.complete && img.naturalWidth > 0)")
    assert page.evaluate("document.images.length") == 3
    page.evaluate("document.fonts.ready")
    assert page.evaluate("[...document.fonts].every((font) => font.status !== 'error')")
    assert page.evaluate("window.__csp") == []
