"""The page and what it needs from the app itself, so that it works on an intranet without a CDN or a
CJK font on the viewer's machine: the page, the bundled CJK font (cut into slices the browser fetches
by `unicode-range`) and the API's Swagger UI with local assets."""

from __future__ import annotations

import threading
from functools import cache
from html import escape
from importlib.resources import files
from pathlib import Path
from typing import Literal

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, Response

from voc.api.deps import SettingsDep
from voc.report.fonts import WEB_FAMILY, WEB_SLICES, unicode_range, web_font_name, web_font_slices, write_web_font

WEB = Path(__file__).resolve().parent.parent / "web"
# Swagger UI 5 (OpenAPI 3.1), shipped by fastapi-offline; only its files are used: its HTML has inline
# script, which the page's policy refuses. ReDoc is not served (its styles are inline too).
SWAGGER_ASSETS = Path(str(files("fastapi_offline") / "static"))
FONT_CACHE = "public, max-age=604800"
_locks = {name: threading.Lock() for name in WEB_SLICES}

router = APIRouter(include_in_schema=False)


@router.get("/")
def page() -> FileResponse:
    return FileResponse(WEB / "index.html")


@router.get("/docs")
def docs(request: Request) -> HTMLResponse:
    """Swagger UI from this app's own files; its start-up script is a file too (the policy allows
    'self' only). Relative URLs, so that a proxy prefix (root_path) keeps working."""
    title = escape(f"{request.app.title} – API")
    return HTMLResponse(
        '<!DOCTYPE html>\n<html lang="zh-CN">\n<head>\n<meta charset="utf-8">\n'
        f'<title>{title}</title>\n<link rel="icon" href="static/swagger/favicon.png">\n'
        '<link rel="stylesheet" href="static/swagger/swagger-ui.css">\n'
        '<link rel="stylesheet" href="static/fonts/voc-cjk.css">\n<link rel="stylesheet" href="static/docs.css">\n'
        '</head>\n<body>\n'
        '<div id="swagger-ui" data-openapi="openapi.json"></div>\n'
        '<script src="static/swagger/swagger-ui-bundle.js"></script>\n<script src="static/docs.js"></script>\n'
        "</body>\n</html>\n")


@router.get("/static/fonts/voc-cjk.css")
def font_faces() -> Response:
    """One @font-face per slice of Noto Sans CJK, each with the characters it holds."""
    return Response(_font_css(), media_type="text/css; charset=utf-8", headers={"Cache-Control": FONT_CACHE})


@cache
def _font_css() -> str:
    local = 'local("Noto Sans CJK SC"), local("NotoSansCJKsc-Regular"), local("Source Han Sans SC")'
    return "".join(
        f'@font-face {{ font-family: "{WEB_FAMILY}"; font-style: normal; font-weight: 100 900; '
        f'font-display: swap; src: {local}, url("voc-cjk-{name}.woff") format("woff"); '
        f"unicode-range: {unicode_range(points)}; }}\n"
        for name, points in web_font_slices().items())


@router.get("/static/fonts/voc-cjk-{slice_name}.woff")
def font_slice(slice_name: Literal["core", "common", "rare"], settings: SettingsDep) -> FileResponse:
    """A slice of the font, cut from the bundled one on its first request and kept in the data
    directory (`fonts/`). The first cut takes seconds (core) to a minute (rare)."""
    path = settings.resolved_data_dir / "fonts" / web_font_name(slice_name)
    if not path.exists():
        with _locks[slice_name]:
            if not path.exists():
                write_web_font(slice_name, path)
    return FileResponse(path, media_type="font/woff", headers={"Cache-Control": FONT_CACHE})
