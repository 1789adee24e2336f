"""The app factory (FastAPI): chat (SSE), runs, reports, proposals, voices, knowledge, review queue,
and one offline web page. The top-level `app.py` exposes it; `voc serve` runs it on 127.0.0.1."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles

from agents.chat import build_chat_graph
from agents.chat_llm import ChatLLM
from agents.runner import checkpointer_for
from agents.toolbox import open_toolbox
from voc.api import chat, knowledge, proposals, reports, reviews, runs, voices, web
from voc.api.guards import AccessGuard, BodyLimit, HostGuard, SecurityHeaders
from voc.api.services import Services
from voc.config import Settings, get_settings
from voc.errors import Conflict, NotFound, VocError
from voc.storage import Store

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        settings.ensure_dirs()
        async with checkpointer_for(settings, "chat.sqlite") as saver, open_toolbox(settings) as toolbox:
            llm = ChatLLM(settings) if settings.llm_base_url and settings.llm_model else None
            app.state.services = Services(settings=settings, store=Store(settings.resolved_database_url),
                                          toolbox=toolbox, chat=build_chat_graph().compile(checkpointer=saver),
                                          chat_llm=llm)
            yield
            for task in list(app.state.services.tasks):
                task.cancel()

    # /docs is served by the web router with local assets (no CDN); ReDoc is not served.
    app = FastAPI(title="VOC 客户声音", version="0.5.0", lifespan=lifespan, docs_url=None, redoc_url=None,
                  swagger_ui_oauth2_redirect_url=None,
                  description="Voice of the customer → owner-assigned improvement proposals: chat, runs, "
                  "reports, proposals, voices, knowledge and the review queue.")
    for module in (chat, runs, reports, proposals, voices, knowledge, reviews, web):
        app.include_router(module.router)
    _guard(app, settings)
    _errors(app)
    # After the routes (the font is a route under /static), the more specific mount first.
    app.mount("/static/swagger", StaticFiles(directory=web.SWAGGER_ASSETS), name="swagger")
    app.mount("/static", StaticFiles(directory=web.WEB), name="static")
    return app


def _guard(app: FastAPI, settings: Settings) -> None:
    """In the app, not in `voc serve`: `uvicorn app:app --host 0.0.0.0` is guarded the same way.
    Outermost last: headers on every answer, then Host/Origin, then token or loopback, then body size."""
    app.add_middleware(BodyLimit, limit=settings.api_max_body_bytes)
    app.add_middleware(AccessGuard, token=settings.api_token)
    app.add_middleware(HostGuard, allowed=[*settings.api_allowed_hosts, settings.api_host])
    app.add_middleware(SecurityHeaders)


def _errors(app: FastAPI) -> None:
    @app.exception_handler(HTTPException)
    async def http_error(_request: Request, exc: HTTPException) -> JSONResponse:
        return JSONResponse({"error": exc.detail}, status_code=exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        details = [{"where": ".".join(str(p) for p in e["loc"]), "problem": e["msg"]} for e in exc.errors()]
        return JSONResponse({"error": "invalid request", "details": details}, status_code=422)

    @app.exception_handler(Exception)
    async def crash(request: Request, exc: Exception) -> JSONResponse:
        log.error("%s %s failed", request.method, request.url.path, exc_info=exc)  # the trace stays here
        return JSONResponse({"error": "内部错误"}, status_code=500)

    @app.exception_handler(VocError)
    async def expected(_request: Request, exc: VocError) -> JSONResponse:
        return JSONResponse({"error": str(exc)}, status_code=status_of(exc))


def status_of(error: VocError) -> int:
    """The HTTP status of an expected failure, by its kind (not its message)."""
    if isinstance(error, NotFound):
        return 404
    if isinstance(error, Conflict):
        return 409
    return 422

