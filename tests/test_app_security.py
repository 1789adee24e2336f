"""The app's guards, whoever starts it (`voc serve`, `uvicorn app:app`): streamed body limit, local-only
without a token, allowed Host names, 4xx JSON for bad path values, security headers on reports and page.

No knowledge base and no run here: the app gets its services by hand (no lifespan), which is all the
guards, validation and file routes need."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app import create_app
from tests.conftest import free_port
from voc.api.guards import BodyLimit, host_name, is_loopback
from voc.api.services import Services
from voc.config import REPO_ROOT, Settings
from voc.storage import Store

WEEK = "2026-W47"
LOCAL = {"base_url": "http://127.0.0.1:8080", "client": ("127.0.0.1", 50000)}
REPORT_CSP = ("default-src 'none'; img-src data:; font-src data:; style-src 'unsafe-inline'; base-uri 'none'; "
              "form-action 'none'; frame-ancestors 'none'")


def make_app(data_dir: Path, **settings: Any) -> FastAPI:
    config = Settings(data_dir=data_dir, **settings)
    config.ensure_dirs()
    app = create_app(config)
    app.state.services = Services(settings=config, store=Store(config.resolved_database_url),
                                  toolbox=cast(Any, None), chat=cast(Any, None))
    return app


@pytest.fixture
def app(tmp_path: Path) -> FastAPI:
    return make_app(tmp_path / "data")


@pytest.fixture
def local(app: FastAPI) -> TestClient:
    return TestClient(app, raise_server_exceptions=False, **LOCAL)  # type: ignore[arg-type]


# ------------------------------------------------------------------ 1. the body limit counts the stream


def test_a_chunked_body_over_the_limit_gets_413(local: TestClient) -> None:
    def body() -> Iterator[bytes]:
        for _ in range(20):
            yield b"x" * 16_384  # 320 KB, no Content-Length: Transfer-Encoding: chunked

    response = local.patch("/api/proposals/PR-1", content=body(), headers={"content-type": "application/json"})
    assert response.status_code == 413 and "65536" in response.json()["error"]
    declared = local.patch("/api/proposals/PR-1", content=b"x" * 70_000, headers={"content-type": "application/json"})
    assert declared.status_code == 413 and declared.json()["error"]
    odd = asgi_call(local.app, "POST", "/api/chat", [b"{}"], {"content-length": "\u00b2"})
    assert odd[0] == 413 and json.loads(odd[2])["error"]  # a latin-1 digit that int() refuses


def asgi_call(app: Any, method: str, path: str, chunks: Sequence[bytes] = (), headers: dict[str, str] | None = None,
              server: tuple[str, int] = ("127.0.0.1", 8080), client: tuple[str, int] = ("127.0.0.1", 50000),
              root_path: str = "") -> tuple[int, dict[str, str], bytes, int]:
    """Drive the ASGI app by hand: status, headers, body, and how many body chunks it pulled."""
    sent: list[dict[str, Any]] = []
    pulled = 0

    async def receive() -> dict[str, Any]:
        nonlocal pulled
        if pulled < len(chunks):
            pulled += 1
            return {"type": "http.request", "body": chunks[pulled - 1], "more_body": pulled < len(chunks)}
        await asyncio.sleep(0.01)
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    raw = [(b"host", f"{server[0]}:{server[1]}".encode())] + [(k.encode(), v.encode("latin-1"))
                                                               for k, v in (headers or {}).items()]
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "scheme": "http",
             "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": root_path, "headers": raw,
             "server": server, "client": client}
    asyncio.run(app(scope, receive, send))
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], {k.decode(): v.decode() for k, v in start["headers"]}, body, pulled


def test_the_body_limit_stops_reading_once_it_is_passed(app: FastAPI) -> None:
    chunks = [b"x" * 65_536] * 100  # 6.5 MB if it were all read
    status, _, body, pulled = asgi_call(app, "PATCH", "/api/proposals/PR-1", chunks,
                                        {"content-type": "application/json"})
    assert status == 413 and json.loads(body)["error"] and pulled == 2


def test_a_300_mb_chunked_patch_to_a_real_server_stops_early(app: FastAPI) -> None:
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=free_port(), lifespan="off",
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    sent = 0

    def body() -> Iterator[bytes]:
        nonlocal sent
        for _ in range(300 * 16):  # 300 MB in 64 KB chunks, produced only as the server takes them
            sent += 65_536
            yield b"x" * 65_536

    try:
        deadline = time.monotonic() + 30
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.05)
        response = httpx.patch(f"http://127.0.0.1:{server.config.port}/api/proposals/PR-1", content=body(),
                               headers={"content-type": "application/json"}, timeout=30)
        assert response.status_code == 413 and response.json()["error"]
        assert sent < 50 * 2**20, sent  # the connection closed long before 300 MB
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def test_the_body_limit_alone_refuses_whatever_the_app_answers() -> None:
    async def reader(scope: Any, receive: Any, send: Any) -> None:
        while (await receive()).get("more_body"):
            pass
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"read it all"})

    status, _, body, pulled = asgi_call(BodyLimit(reader, limit=1024), "POST", "/x", [b"y" * 600] * 10)
    assert (status, pulled) == (413, 2) and b"1024" in body
    assert asgi_call(BodyLimit(reader, limit=1024), "POST", "/x", [b"y" * 600])[0] == 200


# ------------------------------------------------------------------ 2. no token: loopback only, in the app


def test_without_a_token_api_requests_off_loopback_are_refused(app: FastAPI) -> None:
    remote = TestClient(app, base_url="http://10.0.0.5:8080", client=("10.0.0.9", 40000))
    refused = remote.get("/api/proposals")
    assert refused.status_code == 403 and "VOC_API_TOKEN" in refused.json()["error"]
    assert "令牌" in refused.json()["error"]
    assert remote.get("/").status_code == 200  # the page itself holds no data
    # Bound to 0.0.0.0 (the server address is the interface's), even a loopback client is refused.
    status, _, body, _ = asgi_call(app, "GET", "/api/proposals", server=("10.0.0.5", 8080))
    assert status == 403 and "VOC_API_TOKEN" in json.loads(body)["error"]
    # A loopback server but a remote client (a tunnel, a proxy) is refused too.
    assert asgi_call(app, "GET", "/api/proposals", client=("192.168.1.7", 40000))[0] == 403
    assert asgi_call(app, "GET", "/api/proposals")[0] == 200


def test_with_a_token_remote_requests_need_it(tmp_path: Path) -> None:
    remote = TestClient(make_app(tmp_path, api_token="s3cret"), base_url="http://10.0.0.5:8080",
                        client=("10.0.0.9", 40000))
    assert remote.get("/api/proposals").status_code == 401
    assert remote.get("/api/proposals", headers={"Authorization": "Bearer s3cret"}).status_code == 200


def test_a_proxy_prefix_does_not_open_the_api(tmp_path: Path) -> None:
    def behind_proxy(app: FastAPI, path: str) -> int:  # uvicorn --root-path /voc, reached from elsewhere
        return asgi_call(app, "GET", path, server=("10.0.0.5", 8080), client=("10.0.0.9", 40000),
                         root_path="/voc")[0]

    assert behind_proxy(make_app(tmp_path / "a"), "/voc/api/proposals") == 403
    locked = make_app(tmp_path / "b", api_token="s3cret")
    assert behind_proxy(locked, "/voc/api/proposals") == 401 and behind_proxy(locked, "/voc/") == 200


def test_loopback_detection() -> None:
    assert all(map(is_loopback, ["127.0.0.1", "127.3.4.5", "::1", "localhost", "::ffff:127.0.0.1", None]))
    assert not any(map(is_loopback, ["0.0.0.0", "10.0.0.5", "::", "testclient", "evil.localhost.example"]))


# ------------------------------------------------------------------ 3. Host names (DNS rebinding)


def test_only_allowed_host_names_are_answered(local: TestClient) -> None:
    rebound = local.get("/api/proposals", headers={"host": "attacker.example"})
    assert rebound.status_code == 421 and "attacker.example" in rebound.json()["error"]
    assert local.get("/", headers={"host": "attacker.example:8080"}).status_code == 421
    for host in ("127.0.0.1:8080", "localhost:8080", "LOCALHOST", "[::1]:8080"):
        assert local.get("/api/proposals", headers={"host": host}).status_code == 200, host
    foreign = local.post("/api/reports", json={"week": WEEK}, headers={"origin": "http://attacker.example"})
    assert foreign.status_code == 403 and foreign.json()["error"]
    assert local.get("/api/proposals", headers={"origin": "http://127.0.0.1:8080"}).status_code == 200
    for origin in ("null", "http://[oops", "http://127.0.0.1.attacker.example"):
        assert local.get("/api/proposals", headers={"origin": origin}).status_code == 403, origin


def test_allowed_hosts_are_configurable_and_include_api_host(tmp_path: Path) -> None:
    assert Settings().api_allowed_hosts == ["127.0.0.1", "localhost", "::1"]  # the default stays loopback
    app = make_app(tmp_path, api_allowed_hosts=["voc.bank.local"], api_host="voc-01")
    client = TestClient(app, **LOCAL)  # type: ignore[arg-type]
    assert client.get("/api/proposals", headers={"host": "voc.bank.local:8080"}).status_code == 200
    assert client.get("/api/proposals", headers={"host": "voc-01"}).status_code == 200
    assert client.get("/api/proposals", headers={"host": "localhost"}).status_code == 421
    assert host_name("[::1]:80") == "::1" and host_name("Example.ORG.:443") == "example.org"


# ------------------------------------------------------------------ 4. the page sends the token


def test_the_page_sends_the_bearer_token_and_asks_for_it() -> None:
    script = (REPO_ROOT / "voc" / "web" / "app.js").read_text(encoding="utf-8")
    page = (REPO_ROOT / "voc" / "web" / "index.html").read_text(encoding="utf-8")
    assert "sessionStorage" in script and "Authorization: `Bearer ${token}`" in script
    assert "response.status === 401" in script and 'id="token"' in page
    assert "fetch(" not in script.replace("await fetch(path", "")  # every request goes through call()


# ------------------------------------------------------------------ 5. bad path values: 4xx JSON


@pytest.mark.parametrize("path", [
    "/api/reports/2026-W99/report.html", "/api/reports/%5C/report.html", "/api/reports/W47%00/report.html",
    f"/api/reports/{WEEK}%00/report.html", f"/api/reports/{WEEK}/report.exe", "/api/reviews?week=bad",
    "/api/reviews?week=2026-W00", "/api/dashboard/2026-W99", "/api/dashboard/2026-W99/charts/funnel.png",
    "/api/voices?week=2026-W99", "/api/runs/%2E%2E", "/api/runs/%2E%2E/run", "/api/runs/.hidden/run",
    "/api/runs/a..b/run",
])
def test_bad_path_values_are_4xx_json(local: TestClient, path: str) -> None:
    (local.app.state.services.settings.resolved_data_dir / "run.json").write_text(  # type: ignore[attr-defined]
        '{"secret": "the data directory"}', encoding="utf-8")
    response = local.get(path)
    assert 400 <= response.status_code < 500, (path, response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json") and response.json()["error"]
    assert "secret" not in response.text


def test_bad_weeks_in_bodies_are_422(local: TestClient) -> None:
    for body in ({"week": "2026-W99"}, {"week": "2026-W47\x00"}, {"week": "../2026-W47"}):
        assert local.post("/api/reports", json=body).status_code == 422, body
        assert local.post("/api/runs", json=body).status_code == 422, body


def test_run_dir_stays_inside_runs_dir(app: FastAPI) -> None:
    services: Services = app.state.services
    (services.settings.resolved_data_dir / "run.json").write_text("{}", encoding="utf-8")
    assert services.run_dir("..") is None and services.run_dir("../runs") is None
    run = services.settings.runs_dir / "2026-W47-offline-20261201T101500-1a2b3c"
    run.mkdir()
    (run / "run.json").write_text("{}", encoding="utf-8")
    assert services.run_dir(run.name) == run.resolve()


def test_an_unexpected_error_is_500_json_without_internals(app: FastAPI, local: TestClient,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    def boom() -> None:
        raise RuntimeError("/secret/path/voc.db is locked")

    app.add_api_route("/api/boom", boom)
    with caplog.at_level(logging.ERROR):
        response = local.get("/api/boom")
    assert response.status_code == 500 and response.json() == {"error": "内部错误"}
    assert "secret" not in response.text and "/secret/path/voc.db is locked" in caplog.text


# ------------------------------------------------------------------ 6. security headers


def write_reports(app: FastAPI) -> None:
    folder = app.state.services.settings.resolved_data_dir / "reports" / WEEK
    folder.mkdir(parents=True)
    (folder / "report.html").write_text("<html><body><script>alert(1)</script></body></html>", encoding="utf-8")
    (folder / "report.md").write_text("# 报告\n<script>alert(1)</script>\n", encoding="utf-8")
    (folder / "report.pdf").write_bytes(b"%PDF-1.7\n")


def test_served_reports_cannot_run_scripts(app: FastAPI, local: TestClient) -> None:
    write_reports(app)
    html = local.get(f"/api/reports/{WEEK}/report.html")
    assert html.status_code == 200 and html.headers["content-security-policy"] == REPORT_CSP
    assert html.headers["x-content-type-options"] == "nosniff" and html.headers["content-type"].startswith("text/html")
    markdown = local.get(f"/api/reports/{WEEK}/report.md")
    assert markdown.headers["content-type"] == "text/plain; charset=utf-8" and "报告" in markdown.text
    assert markdown.headers["x-content-type-options"] == "nosniff"
    assert markdown.headers["content-security-policy"] == REPORT_CSP
    pdf = local.get(f"/api/reports/{WEEK}/report.pdf")
    assert pdf.headers["content-type"] == "application/pdf" and pdf.headers["x-content-type-options"] == "nosniff"


def test_the_report_template_needs_nothing_the_policy_refuses() -> None:
    for template in (REPO_ROOT / "voc" / "report" / "templates").glob("*.j2"):
        text = template.read_text(encoding="utf-8").lower()
        assert "<script" not in text and "<link" not in text and "@import" not in text, template
        assert " on" + "load=" not in text and "http://" not in text and "https://" not in text, template


def test_the_page_and_the_api_have_security_headers(local: TestClient) -> None:
    page = local.get("/")
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "default-src 'none'" in policy and "frame-ancestors 'none'" in policy
    assert "unsafe-inline" not in policy and "connect-src 'self'" in policy
    assert page.headers["x-frame-options"] == "DENY" and page.headers["referrer-policy"] == "no-referrer"
    assert local.get("/static/app.js").headers["content-security-policy"] == policy
    api = local.get("/api/proposals")
    assert api.headers["x-content-type-options"] == "nosniff" and "default-src 'none'" in api.headers[
        "content-security-policy"]
    refused = local.get("/api/proposals", headers={"host": "attacker.example"})
    assert refused.headers["x-frame-options"] == "DENY"


# ------------------------------------------------------------------ 7. /docs and the font come from the app itself


def test_the_api_docs_load_nothing_from_outside_and_run_under_the_page_policy(local: TestClient) -> None:
    import re

    docs = local.get("/docs")
    assert docs.status_code == 200 and docs.headers["content-type"].startswith("text/html")
    assert "http://" not in docs.text and "https://" not in docs.text  # no CDN (it was cdn.jsdelivr.net)
    policy = docs.headers["content-security-policy"]
    assert "script-src 'self';" in policy and "unsafe-inline" not in policy and "unsafe-eval" not in policy
    assert "style-src 'self';" in policy and "default-src 'none'" in policy
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", docs.text, re.S)
    assert scripts and all("src=" in attributes and not body.strip() for attributes, body in scripts)  # no inline
    assets = re.findall(r'(?:src|href)="([^"]+)"', docs.text)
    assert any(a.endswith("swagger-ui-bundle.js") for a in assets) and any(a.endswith("swagger-ui.css") for a in assets)
    for asset in assets:
        fetched = local.get("/" + asset)  # relative to /docs
        assert fetched.status_code == 200 and fetched.content, asset
    assert local.get("/openapi.json").json()["openapi"].startswith("3.1")  # Swagger UI 5 reads 3.1
    assert local.get("/redoc").status_code == 404  # not served: its inline styles need 'unsafe-inline'


def test_the_page_font_is_served_by_the_app(app: FastAPI, local: TestClient) -> None:
    import io
    import re

    from fontTools.ttLib import TTFont

    from voc.report.fonts import web_font_slices

    faces = local.get("/static/fonts/voc-cjk.css")
    assert faces.status_code == 200 and faces.headers["content-type"].startswith("text/css")
    rules = re.findall(r"@font-face \{([^}]*)\}", faces.text)
    assert len(rules) == 3 and all('font-family: "VocCJK"' in r and "unicode-range: U+" in r for r in rules)
    assert 'url("voc-cjk-core.woff")' in faces.text and "http" not in faces.text
    style = (REPO_ROOT / "voc" / "web" / "style.css").read_text(encoding="utf-8")
    assert '@import url("fonts/voc-cjk.css")' in style and 'font-family: "VocCJK"' in style

    core = local.get("/static/fonts/voc-cjk-core.woff")
    assert core.status_code == 200 and core.headers["content-type"] == "font/woff" and core.content[:4] == b"wOFF"
    assert "max-age" in core.headers["cache-control"] and core.headers["etag"]
    cmap = TTFont(io.BytesIO(core.content)).getBestCmap()
    page = "".join((REPO_ROOT / "voc" / "web" / name).read_text(encoding="utf-8")
                   for name in ("index.html", "app.js", "style.css"))
    in_font = {point for points in web_font_slices().values() for point in points}
    drawn = {ord(ch) for ch in page if ord(ch) > 0x7E and ord(ch) in in_font}
    assert any(0x4E00 <= p <= 0x9FFF for p in drawn) and 0x2713 in drawn  # Chinese words and the ✓ of a done step
    assert drawn <= set(cmap)  # the page's own words and symbols never need more than the first slice
    cached = list((app.state.services.settings.resolved_data_dir / "fonts").glob("voc-cjk-core-*.woff"))
    assert len(cached) == 1 and cached[0].read_bytes() == core.content  # cut once, kept in the data directory
    assert local.get("/static/fonts/voc-cjk-bold.woff").status_code in (404, 422)


def test_the_bearer_scheme_is_case_insensitive_and_the_token_exact() -> None:
    from voc.auth import bearer_matches

    assert bearer_matches(b"Bearer s3cret", "s3cret") and bearer_matches("bearer  s3cret ", "s3cret")
    assert not bearer_matches(b"Bearer s3cre", "s3cret") and not bearer_matches(b"Basic s3cret", "s3cret")
    assert not bearer_matches(None, "s3cret") and not bearer_matches(b"s3cret", "s3cret")
