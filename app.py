"""The VOC analysts' app: `uvicorn app:app` (or `voc serve`). Routers live in voc/api/, one per resource;
the factory is voc.api.application.create_app."""

from __future__ import annotations

from fastapi import FastAPI

from voc.api.application import create_app

__all__ = ["create_app"]  # and `app`, built by __getattr__


def __getattr__(name: str) -> FastAPI:
    # Built on first use, with the settings of that moment (importing this module starts nothing).
    if name == "app":
        return create_app()
    raise AttributeError(name)
