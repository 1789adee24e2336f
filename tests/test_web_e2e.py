"""The web page end to end in a real browser: headless Chromium (Debian's /usr/bin/chromium) driven by
Playwright against the real app served by uvicorn on loopback, with a bearer token set: the page asks
for it, then chat streams steps before the answer, the dashboard charts load, the proposal board moves a
card, and nothing breaks the page's Content-Security-Policy. The served report renders under its own
strict policy. A full-page screenshot is kept in tests/artifacts/web_e2e.png."""

from __future__ import annotations

import importlib.util
import os
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
from voc.report.fonts import cjk_font_path

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.slow

WEEK = "2026-W47"
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
BROWSER_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync"]
TIMEOUT_MS = 60_000
TOKEN = "e2e-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
# Every Content-Security-Policy violation on a page, reported by the browser itself.
WATCH_CSP = ("window.__csp = []; document.addEventListener('securitypolicyviolation', "
             "(e) => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));")


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
    settings: Settings = kb_with_voices(loaded_kb, tmp_path_factory.mktemp("web"), rows())
    settings = settings.model_copy(update={"api_token": TOKEN})
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


def _cjk_fontconfig(folder: Path) -> dict[str, str | float | bool]:
    """The machine may have no CJK font: point the browser's fontconfig at the font package the report
    already uses, so the screenshot shows Chinese instead of boxes."""
    conf = folder / "fonts.conf"
    conf.write_text(
        '<?xml version="1.0"?>\n<!DOCTYPE fontconfig SYSTEM "fonts.dtd">\n<fontconfig>\n'
        '  <include ignore_missing="yes">/etc/fonts/fonts.conf</include>\n'
        f"  <dir>{cjk_font_path().parent}</dir>\n  <cachedir>{folder / 'fc-cache'}</cachedir>\n</fontconfig>\n",
        encoding="utf-8")
    return {**os.environ, "FONTCONFIG_FILE": str(conf)}


def test_chat_and_board_in_a_real_browser(base_url: str, tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright  # present: the fixture skips otherwise

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=BROWSER_ARGS,
                                             env=_cjk_fontconfig(tmp_path), timeout=TIMEOUT_MS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900}, locale="zh-CN")
            page.set_default_timeout(TIMEOUT_MS)
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.add_init_script(WATCH_CSP)
            page.goto(base_url + "/")

            # The token: asked for on the first 401, kept in sessionStorage, sent on every request.
            expect(page.locator("#login")).to_be_visible()
            page.fill("#token", TOKEN)
            page.locator("#login button[type=submit]").click()
            expect(page.locator("#login")).to_be_hidden()
            expect(page.locator(f'#week option[value="{WEEK}"]')).to_have_count(1)
            assert page.evaluate("sessionStorage.getItem('voc-api-token')") == TOKEN

            # Chat: the streamed steps land in #messages before the answer, which cites last week's counts.
            page.fill("#question", "本周哪些问题在上升？为什么？")
            page.locator("#ask button[type=submit]").click()
            page.locator("#messages .msg.step").first.wait_for()
            answer = page.locator("#messages .msg.answer").filter(has_text="上周")
            answer.first.wait_for()
            kinds = page.eval_on_selector_all("#messages .msg", "nodes => nodes.map(n => n.classList[1])")
            assert "step" in kinds and kinds.index("step") < kinds.index("answer"), kinds
            assert page.locator("#messages .msg.error").count() == 0

            # Dashboard: the charts come through fetch (with the token) as blob: images.
            page.locator('nav button[data-tab="dashboard"]').click()
            expect(page.locator("#headline .card").first).to_be_visible()
            for name in ("funnel", "dimensions", "matrix"):
                chart = page.locator(f"#chart-{name}")
                expect(chart).to_have_attribute("src", re.compile(r"^blob:"))
                page.wait_for_function("(img) => img.complete && img.naturalWidth > 0", arg=chart.element_handle())

            # Board: the first unclaimed card moves to 整改中 via its button, in the page and in the API.
            page.locator('nav button[data-tab="board"]').click()
            expect(page.locator("#board")).to_be_visible()
            first = page.locator('#columns .column[data-status="待认领"] .proposal').first
            first.wait_for()
            pid = first.get_attribute("data-id")
            assert pid
            first.locator('button[data-to="整改中"]').click()
            page.locator(f'#columns .column[data-status="整改中"] .proposal[data-id="{pid}"]').wait_for()
            expect(page.locator(f'#columns .column[data-status="待认领"] .proposal[data-id="{pid}"]')).to_have_count(0)
            assert httpx.get(f"{base_url}/api/proposals/{pid}", timeout=30, headers=AUTH).json()["status"] == "整改中"
            assert httpx.get(f"{base_url}/api/proposals/{pid}", timeout=30).status_code == 401

            ARTIFACTS.mkdir(exist_ok=True)
            shot = ARTIFACTS / "web_e2e.png"
            page.screenshot(path=str(shot), full_page=True)
            assert shot.stat().st_size > 10_000, shot.stat().st_size
            assert not errors, errors
            assert page.evaluate("window.__csp") == []
            _report_renders_under_its_policy(browser.new_page(), base_url)
        finally:
            browser.close()


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
