"""The 客户声音 (voice of the customer) record and its controlled vocabularies."""

from __future__ import annotations

import hashlib
from datetime import datetime
from enum import IntEnum, StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, computed_field, field_validator

LOCAL_TZ = ZoneInfo("Asia/Shanghai")


class Channel(StrEnum):
    ROBOT = "智能客服机器人"
    PHONE = "电话客服"
    ONLINE = "在线客服"
    APP_FEEDBACK = "APP意见反馈"
    COMPLAINT = "投诉工单"
    REGULATOR = "监管转送"
    SOCIAL = "社交媒体"
    BRANCH_BOOK = "网点意见簿"
    SURVEY = "满意度回访"
    STAFF = "员工反馈"
    # A channel the column map does not know: the voice is kept (raw value in its metadata).
    OTHER = "其他渠道"


class SourceType(StrEnum):
    CUSTOMER = "客户"
    FRONT_STAFF = "前台员工"
    BACK_STAFF = "中后台员工"
    THIRD_PARTY = "第三方"


class Segment(StrEnum):
    PERSONAL = "个人"
    ELDERLY = "老年客户"
    CORPORATE = "对公"
    PRIVATE_BANKING = "私人银行"
    UNKNOWN = "未知"


class Business(StrEnum):
    CREDIT_CARD = "信用卡"
    DEBIT_CARD = "借记卡"
    MOBILE_BANKING = "手机银行"
    ONLINE_BANKING = "网上银行"
    WEALTH = "理财"
    LOAN = "贷款"
    TRANSFER = "转账汇款"
    CORPORATE = "对公业务"
    BRANCH = "网点服务"
    SERVICE = "客服服务"
    OTHER = "其他"


class FunnelTier(IntEnum):
    """客户服务漏斗: volume falls and escalation rises from top (1) to bottom (6)."""

    ROBOT = 1
    HUMAN = 2
    FEEDBACK = 3
    STAFF = 4
    COMPLAINT = 5
    REGULATOR = 6

    @property
    def label(self) -> str:
        return FUNNEL_LABELS[self]


FUNNEL_LABELS: dict[FunnelTier, str] = {
    FunnelTier.ROBOT: "机器人咨询",
    FunnelTier.HUMAN: "人工咨询",
    FunnelTier.FEEDBACK: "线上及意见反馈",
    FunnelTier.STAFF: "队伍反馈",
    FunnelTier.COMPLAINT: "投诉",
    FunnelTier.REGULATOR: "监管投诉",
}

# Voluntary feedback channels (app, social media, branch book, survey call-backs) share the
# third tier: the standard places "App线上反馈" between human consultation and staff reports.
CHANNEL_TIER: dict[Channel, FunnelTier] = {
    Channel.ROBOT: FunnelTier.ROBOT,
    Channel.PHONE: FunnelTier.HUMAN,
    Channel.ONLINE: FunnelTier.HUMAN,
    Channel.APP_FEEDBACK: FunnelTier.FEEDBACK,
    Channel.SOCIAL: FunnelTier.FEEDBACK,
    Channel.BRANCH_BOOK: FunnelTier.FEEDBACK,
    Channel.SURVEY: FunnelTier.FEEDBACK,
    Channel.STAFF: FunnelTier.STAFF,
    Channel.COMPLAINT: FunnelTier.COMPLAINT,
    Channel.REGULATOR: FunnelTier.REGULATOR,
    # An unknown channel is counted with voluntary feedback: it is neither a consultation, an
    # escalation nor a staff report that the export would have named.
    Channel.OTHER: FunnelTier.FEEDBACK,
}


def funnel_tier(channel: Channel) -> FunnelTier:
    return CHANNEL_TIER[channel]


def as_local_aware(value: datetime) -> datetime:
    """Naive times are Asia/Shanghai wall-clock times; aware ones are kept as given."""
    return value.replace(tzinfo=LOCAL_TZ) if value.tzinfo is None else value


class Voice(BaseModel):
    """One 客户声音 record after masking: the unit every agent works on."""

    model_config = ConfigDict(use_enum_values=False, frozen=False)

    id: str = Field(min_length=1, max_length=64)
    created_at: datetime
    channel: Channel
    source_type: SourceType = SourceType.CUSTOMER
    customer_id: str | None = Field(default=None, max_length=64)
    customer_segment: Segment = Segment.UNKNOWN
    business: Business | None = None
    text: str = Field(min_length=1, max_length=20000)
    metadata: dict[str, Any] = Field(default_factory=dict)

    @field_validator("created_at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        return as_local_aware(value)

    @field_validator("text")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        stripped = value.strip()
        if not stripped:
            raise ValueError("text is blank")
        return stripped

    @computed_field  # type: ignore[prop-decorator]
    @property
    def funnel_tier(self) -> FunnelTier:
        return funnel_tier(self.channel)

    @property
    def local_time(self) -> datetime:
        return self.created_at.astimezone(LOCAL_TZ)


def stable_voice_id(channel: str, created_at: datetime, customer_id: str | None, text: str) -> str:
    """A deterministic id for rows that arrive without one, so re-ingesting stores nothing new."""
    key = "\x1f".join([channel, as_local_aware(created_at).isoformat(), customer_id or "", text])
    return "V" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:20]
