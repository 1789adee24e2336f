"""Dependencies, declared once."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from voc.api.services import Services
from voc.config import Settings
from voc.lifecycle import ProposalBook


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


def get_app_settings(services: ServicesDep) -> Settings:
    return services.settings


SettingsDep = Annotated[Settings, Depends(get_app_settings)]


def get_book(services: ServicesDep) -> ProposalBook:
    return ProposalBook(services.store)


BookDep = Annotated[ProposalBook, Depends(get_book)]
