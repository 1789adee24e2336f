"""Voices: search the masked voices of a period, fetch one."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query

from voc.api.deps import ServicesDep
from voc.api.params import IsoWeek
from voc.errors import Invalid, NotFound
from voc.models import Business, Channel, Segment
from voc.periods import period_of
from voc.voice_queries import VoiceFilter, VoicePage, VoiceRecord, get_voice, search_voices

router = APIRouter(prefix="/api/voices", tags=["voices"])


@router.get("")
def search(services: ServicesDep, week: IsoWeek | None = None, date_from: date | None = None,
           date_to: date | None = None, channel: Channel | None = None, business: Business | None = None,
           segment: Segment | None = None, query: Annotated[str | None, Query(max_length=200)] = None,
           limit: Annotated[int, Query(ge=1, le=200)] = 50, after: str | None = None) -> VoicePage:
    try:
        period = period_of(week, date_from, date_to)
        filters = VoiceFilter.for_period(period, channel=channel, business=business, segment=segment, query=query)
        return search_voices(services.store, filters, 0, limit, after)
    except ValueError as exc:
        raise Invalid(str(exc)) from exc


@router.get("/{voice_id}")
def one(voice_id: str, services: ServicesDep) -> VoiceRecord:
    voice = get_voice(services.store, voice_id)
    if voice is None:
        raise NotFound(f"no voice {voice_id!r}")
    return voice
