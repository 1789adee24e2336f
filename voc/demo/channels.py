"""The channels (channels.yaml): their shares and mixes, when voices arrive, and their metadata fields."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from voc.demo.data import Frozen, Texts, Weighted, load, require_keys
from voc.demo.styles import ASR, ELDERLY, SLOTS, STYLES
from voc.demo.topics import KINDS, ONEOFF, RECURRING, Kind, Topic
from voc.models import Channel

Profile = Literal["customer", "office", "branch", "weekdays"]
EVENING_HOURS = 3  # after closing, a profile's `evening` weight holds for this many hours


class Plan(Frozen):
    """What arrives through one channel."""

    share: float = Field(gt=0)
    kinds: dict[Kind, float]
    styles: dict[str, float]
    missing_business: float | None = None
    times: Profile
    repeat_to: tuple[Channel, ...] = ()

    @field_validator("kinds")
    @classmethod
    def _every_kind(cls, kinds: dict[Kind, float]) -> dict[Kind, float]:
        require_keys(kinds, KINDS, "kinds")
        return kinds

    @field_validator("styles")
    @classmethod
    def _known_styles(cls, styles: dict[str, float]) -> dict[str, float]:
        if unknown := set(styles) - set(STYLES):
            raise ValueError(f"unknown styles {sorted(unknown)}; known: {', '.join(STYLES)}")
        return styles


class Times(Frozen):
    """A time profile: customer_hours inside [open, close), `evening` for a while after, by weekday."""

    open: tuple[int, int] = (0, 24)
    evening: float = 0.0
    days: tuple[float, float, float, float, float, float, float]

    def hourly(self, customer_hours: tuple[float, ...]) -> list[float]:
        start, close = self.open
        return [w if start <= h < close else self.evening if close <= h < close + EVENING_HOURS else 0.0
                for h, w in enumerate(customer_hours)]


class Fields(Frozen):
    """Values of the channel fields in metadata."""

    os: Texts
    social_platforms: Texts
    survey_scores: dict[Kind, Annotated[tuple[int, ...], Field(min_length=1)]]
    surveyed_channels: Texts
    complaint_levels: Texts
    sla_days: tuple[int, ...] = Field(min_length=1)

    @field_validator("survey_scores")
    @classmethod
    def _every_kind(cls, scores: dict[Kind, tuple[int, ...]]) -> dict[Kind, tuple[int, ...]]:
        require_keys(scores, KINDS, "survey_scores")
        return scores


class Channels(Frozen):
    """channels.yaml."""

    missing_business: float
    channels: dict[Channel, Plan]
    customer_hours: tuple[float, ...] = Field(min_length=24, max_length=24)
    times: dict[Profile, Times]
    fields: Fields

    @model_validator(mode="after")
    def _complete(self) -> Channels:
        require_keys(self.channels, set(Channel) - {Channel.OTHER}, "channels")
        if abs(sum(plan.share for plan in self.channels.values()) - 1) > 1e-9:
            raise ValueError("the channels' shares must add up to 1")
        if undefined := {plan.times for plan in self.channels.values()} - set(self.times):
            raise ValueError(f"time profiles {sorted(undefined)} are used but not defined under times")
        return self


CHANNELS = load("channels.yaml", Channels)
PLANS = CHANNELS.channels
CHANNEL_SHARES: dict[Channel, float] = {channel: plan.share for channel, plan in PLANS.items()}
KIND_PICK = {c: Weighted((kind, plan.kinds[kind]) for kind in KINDS) for c, plan in PLANS.items()}
STYLE_PICK = {c: Weighted(plan.styles.items()) for c, plan in PLANS.items()}
MISSING_BUSINESS = {c: CHANNELS.missing_business if p.missing_business is None else p.missing_business
                    for c, p in PLANS.items()}
# Customers come back about problems they described on these channels.
REPEAT_TARGETS = {channel: plan.repeat_to for channel, plan in PLANS.items() if plan.repeat_to}


def _seconds_into_week(times: Times) -> Weighted[int]:
    """Start of each hour of the week, weighted by weekday × hour of day."""
    hourly = times.hourly(CHANNELS.customer_hours)
    return Weighted((day * 86400 + hour * 3600, d * h) for day, d in enumerate(times.days)
                    for hour, h in enumerate(hourly))


_PROFILES = {name: _seconds_into_week(times) for name, times in CHANNELS.times.items()}
TIME_PROFILE = {channel: _PROFILES[plan.times] for channel, plan in PLANS.items()}

# --- metadata: the channel fields an export of each channel carries --------------------------------------

FIELDS = CHANNELS.fields
MetadataMaker = Callable[[random.Random, datetime, Topic, str], dict[str, Any]]


def _robot(rng: random.Random, when: datetime, topic: Topic, style: str) -> dict[str, Any]:
    negative = topic.kind in (RECURRING, ONEOFF)
    return {
        "session_id": f"RB{rng.randrange(10**10):010d}",
        "turns": rng.randint(1, 12),
        "transferred_to_agent": rng.random() < (0.45 if negative else 0.1),
    }


def _phone(rng: random.Random, when: datetime, topic: Topic, style: str) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "call_id": f"CL{when:%Y%m%d}{rng.randrange(10**6):06d}",
        "duration_s": rng.randint(40, 1500),
    }
    if style in (ASR, ELDERLY):
        meta["asr_confidence"] = round(rng.uniform(0.62, 0.97), 2)
    return meta


def _online(rng: random.Random, when: datetime, topic: Topic, style: str) -> dict[str, Any]:
    return {"session_id": f"OL{rng.randrange(10**10):010d}", "turns": rng.randint(2, 30)}


def _app(rng: random.Random, when: datetime, topic: Topic, style: str) -> dict[str, Any]:
    return {
        "app_version": rng.choice(SLOTS["ver"]),
        "os": rng.choice(FIELDS.os),
        "device": rng.choice(SLOTS["phone_model"]),
    }


def _social(rng: random.Random, when: datetime, topic: Topic, style: str) -> dict[str, Any]:
    # Likes and reposts are heavy-tailed: most posts get none, a few get many.
    return {
        "platform": rng.choice(FIELDS.social_platforms),
        "likes": int(rng.paretovariate(1.2)) - 1,
        "reposts": int(rng.paretovariate(1.6)) - 1,
    }


def _branch(rng: random.Random, when: datetime, topic: Topic, style: str) -> dict[str, Any]:
    return {"branch": rng.choice(SLOTS["branch"])}


def _survey(rng: random.Random, when: datetime, topic: Topic, style: str) -> dict[str, Any]:
    return {
        "survey_type": "满意度回访",
        "survey_score": rng.choice(FIELDS.survey_scores[topic.kind]),
        "scale": 5,
        "surveyed_channel": rng.choice(FIELDS.surveyed_channels),
    }


def _staff(rng: random.Random, when: datetime, topic: Topic, style: str) -> dict[str, Any]:
    return {"report_no": f"YG{when:%Y%m%d}{rng.randrange(10**4):04d}"}


def _complaint(rng: random.Random, when: datetime, topic: Topic, style: str) -> dict[str, Any]:
    return {
        "ticket_no": f"TS{when:%Y%m%d}{rng.randrange(10**5):05d}",
        "complaint_level": rng.choice(FIELDS.complaint_levels),
        "sla_days": rng.choice(FIELDS.sla_days),
    }


def _regulator(rng: random.Random, when: datetime, topic: Topic, style: str) -> dict[str, Any]:
    return {
        "ticket_no": f"JG{when:%Y%m%d}{rng.randrange(10**4):04d}",
        "referral_source": "12378",
        "deadline_days": 10,
    }


CHANNEL_METADATA: dict[Channel, MetadataMaker] = {
    Channel.ROBOT: _robot,
    Channel.PHONE: _phone,
    Channel.ONLINE: _online,
    Channel.APP_FEEDBACK: _app,
    Channel.SOCIAL: _social,
    Channel.BRANCH_BOOK: _branch,
    Channel.SURVEY: _survey,
    Channel.STAFF: _staff,
    Channel.COMPLAINT: _complaint,
    Channel.REGULATOR: _regulator,
}
