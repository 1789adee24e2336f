"""The app factory (FastAPI): chat (SSE), runs, reports, proposals, voices, knowledge, review queue,
and one offline web page. The top-level `app.py` exposes it; `voc serve` runs it on 127.0.0.1."""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles

from agents.chat import build_chat_graph
from agents.chat_llm import ChatLLM
from agents.runner import checkpointer_for
from agents.toolbox import open_toolbox
from voc.api import chat, knowledge, proposals, reports, reviews, runs, voices
from voc.api.services import Services
from voc.config import Settings, get_settings
from voc.lifecycle import LifecycleError
from voc.storage import Store

WEB = Path(__file__).resolve().parent.parent / "web"


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

    app = FastAPI(title="VOC 客户声音", version="0.5.0", lifespan=lifespan,
                  description="Voice of the customer → owner-assigned improvement proposals: chat, runs, "
                  "reports, proposals, voices, knowledge and the review queue.")
    for module in (chat, runs, reports, proposals, voices, knowledge, reviews):
        app.include_router(module.router)
    _guard(app, settings)
    _errors(app)
    app.mount("/static", StaticFiles(directory=WEB), name="static")

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(WEB / "index.html")

    return app


def _guard(app: FastAPI, settings: Settings) -> None:
    expected = f"Bearer {settings.api_token}".encode() if settings.api_token else None

    @app.middleware("http")
    async def limits(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        length = request.headers.get("content-length")
        if length and (not length.isdigit() or int(length) > settings.api_max_body_bytes):
            return JSONResponse({"error": f"request body over {settings.api_max_body_bytes} bytes"}, status_code=413)
        if expected and request.url.path.startswith("/api"):
            given = request.headers.get("authorization", "").encode()
            if not hmac.compare_digest(given, expected):
                return JSONResponse({"error": "missing or wrong bearer token"}, status_code=401,
                                    headers={"WWW-Authenticate": "Bearer"})
        return await call_next(request)


def _errors(app: FastAPI) -> None:
    @app.exception_handler(HTTPException)
    async def http_error(_request: Request, exc: HTTPException) -> JSONResponse:
        return JSONResponse({"error": exc.detail}, status_code=exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        details = [{"where": ".".join(str(p) for p in e["loc"]), "problem": e["msg"]} for e in exc.errors()]
        return JSONResponse({"error": "invalid request", "details": details}, status_code=422)

    @app.exception_handler(LifecycleError)
    async def lifecycle(_request: Request, exc: LifecycleError) -> JSONResponse:
        status = 404 if str(exc).startswith("no proposal") else 409
        return JSONResponse({"error": str(exc)}, status_code=status)

